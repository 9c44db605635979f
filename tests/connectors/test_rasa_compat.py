"""``connectors.rasa_compat``: the parts of Rasa's channel modules a connector imports, which
behave as Rasa's do (the output channel's dispatch and fallbacks, the collector's messages)."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest

from chatbot.conversation.messages import collected
from connectors import rasa_compat
from connectors.rasa_compat.channel import (
    CollectingOutputChannel,
    OutputChannel,
    UserMessage,
)


def test_a_user_message_has_rasas_defaults() -> None:
    message = UserMessage("  hello  ")
    assert message.text == "hello" and message.sender_id == "default"
    assert len(message.message_id) == 32 and int(message.message_id, 16) >= 0
    assert isinstance(message.output_channel, CollectingOutputChannel)
    assert message.metadata is None and message.input_channel is None
    given = UserMessage("hi", sender_id=7, message_id=5, metadata={"a": 1}, headers={"h": "v"})  # type: ignore[arg-type]
    assert (given.sender_id, given.message_id, given.headers) == ("7", "5", {"h": "v"})


class Recording(OutputChannel):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        self.calls.append(("text", text))

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        self.calls.append(("custom", json_message))


async def test_send_response_dispatches_each_part_and_falls_back_to_text() -> None:
    output = Recording()
    buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "Later", "extra": 1}]
    await output.send_response(
        "u", {"text": "Sure?", "quick_replies": buttons, "custom": {"k": 1}, "image": "i.png"}
    )
    await output.send_response("u", {"attachment": "a.pdf", "elements": [{"title": "T"}]})
    assert output.calls == [
        ("text", "Sure?"),
        ("text", "1: Yes (/affirm)"),
        ("text", '2: Later - {"extra": 1}'),
        ("custom", {"k": 1}),
        ("text", "Image: i.png"),
        ("text", "Attachment: a.pdf"),
        ("text", "T : "),
    ]


async def test_the_collector_keeps_what_our_rest_channel_answers() -> None:
    """Rasa's ``CollectingOutputChannel`` and our REST channel's ``collected`` agree."""
    buttons = [{"title": "Yes", "payload": "/affirm"}]
    messages: list[dict[str, Any]] = [
        {"recipient_id": "u", "text": "one\n\ntwo"},
        {"recipient_id": "u", "text": "pick", "buttons": buttons},
        {"recipient_id": "u", "text": "quick", "quick_replies": buttons},
        {"recipient_id": "u", "image": "i.png"},
        {"recipient_id": "u", "custom": {"k": [1, 2]}},
        {"recipient_id": "u", "elements": [{"title": "T", "subtitle": "S", "buttons": buttons}]},
    ]
    collector = CollectingOutputChannel()
    for message in messages:
        await collector.send_response(
            "u", {k: v for k, v in message.items() if k != "recipient_id"}
        )
    assert collector.messages == collected(messages)
    assert collector.latest_output() == collector.messages[-1]


def test_install_provides_rasas_channel_modules_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in rasa_compat.PROVIDED:
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert rasa_compat.install() is True
    channels = importlib.import_module("rasa.core.channels")
    provided = importlib.import_module("rasa.core.channels.channel")
    endpoints = importlib.import_module("rasa.utils.endpoints")
    assert provided.UserMessage is UserMessage
    assert issubclass(channels.RestInput, channels.InputChannel)
    assert callable(endpoints.bool_arg)
    assert rasa_compat.install() is False  # there already


@pytest.mark.parametrize("connectors_first", [True, False])
def test_connector_and_component_names_are_provided_side_by_side(
    connectors_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project with a Rasa connector and custom NLU components or policies gets both sets of
    names, whichever is provided first (they share ``rasa`` and ``rasa.core``)."""
    from chatbot.rasa_compat import COMPONENT_MODULES, provide_components

    for name in [n for n in sys.modules if n == "rasa" or n.startswith("rasa.")]:
        monkeypatch.delitem(sys.modules, name)
    if connectors_first:
        assert rasa_compat.install() is True  # a connector may import Rasa's events too
        assert provide_components() is False  # there already
    else:
        assert provide_components() is True
        assert rasa_compat.install() is True
    assert importlib.import_module("rasa.core.channels.channel").UserMessage is UserMessage
    for name in [*COMPONENT_MODULES, *rasa_compat.PROVIDED]:
        assert importlib.import_module(name) is sys.modules[name]
    policy = importlib.import_module("rasa.core.policies.policy")
    graph = importlib.import_module("rasa.engine.graph")
    assert issubclass(policy.Policy, graph.GraphComponent)
    core = importlib.import_module("rasa.core")
    assert core.channels is sys.modules["rasa.core.channels"]
    assert core.policies is sys.modules["rasa.core.policies"]
