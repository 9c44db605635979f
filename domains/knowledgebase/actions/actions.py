"""The knowledge-base bot's one custom action: rasa-sdk's ``ActionQueryKnowledgeBase`` over the
hotels and restaurants in ``knowledge_base_data.json``.

The action lists the objects of a type ("what hotels are there?"), answers an attribute of one
named by an ordinal ("the price range of the first one?") or of the last one talked about
("does it have free wifi?"), and keeps track of both in the ``knowledge_base_*`` slots. Run it
with an action server (``python -m rasa_sdk --actions actions`` from this folder) or in-process,
as endpoints.yml says.

Yes/no attributes are the strings "yes" and "no" in the JSON: rasa-sdk's answer takes a false
value for a missing one ("Did not find a valid value ...").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa_sdk.knowledge_base.actions import ActionQueryKnowledgeBase
from rasa_sdk.knowledge_base.storage import InMemoryKnowledgeBase

# Beside domain.yml; found from here, so the action works from any working directory.
DATA_FILE = Path(__file__).resolve().parents[1] / "knowledge_base_data.json"


class OrderedKnowledgeBase(InMemoryKnowledgeBase):
    """rasa-sdk's in-memory base, listing objects in the file's order (by ``id``) rather than
    shuffled, so "the first one" is the same object in every run."""

    async def get_objects(
        self, object_type: str, attributes: list[dict[str, str]], limit: int = 5
    ) -> list[dict[str, Any]]:
        everything = len(self.data.get(object_type, []))
        objects = await super().get_objects(object_type, attributes, limit=everything)
        return sorted(objects, key=lambda obj: obj["id"])[:limit]


def load_knowledge_base() -> OrderedKnowledgeBase:
    knowledge_base = OrderedKnowledgeBase(str(DATA_FILE))
    # A hotel is shown with its city, "Harbour View Inn (Lisbon)"; a restaurant by its name.
    knowledge_base.set_representation_function_of_object(
        "hotel", lambda obj: f"{obj['name']} ({obj['city']})"
    )
    return knowledge_base


class ActionQueryHotelsAndRestaurants(ActionQueryKnowledgeBase):
    def __init__(self) -> None:
        super().__init__(load_knowledge_base())

    # rasa-sdk's action server (on Sanic 25) pickles the actions into each worker process, and a
    # knowledge base holds lambdas (its ordinal mapping, its representation functions), which
    # pickle refuses: the action travels without it, and each worker reads the file again.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "knowledge_base"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.knowledge_base = load_knowledge_base()
