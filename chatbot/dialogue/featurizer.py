"""The state featurizer: one dialogue state as a sparse vector for the LSTM dialog-state tracker.

Every feature has a name and an index (0 is padding). A state becomes the indices of the features
it has and their values:

- ``intent=<name>``: the user's intent, one-hot; the NLU's probabilities when ``parse_data`` with
  an ``intent_ranking`` is given (the latest message at prediction time);
- ``entity=<type>``, ``entity=<type>#<role>``, ``entity=<type>#<group>``: entity types present;
- ``text=<word>``: words of a message that has no intent (end-to-end stories);
- slots by type, as Rasa: text/list ``slot:<s>`` (set), bool ``slot:<s>`` + ``slot:<s>=true``,
  categorical ``slot:<s>=<value>`` (one-hot, ``__other__`` for unknown values), float
  ``slot:<s>#set`` + ``slot:<s>`` (scaled to [0, 1]); a project's slot class ``slot:<s>#<i>``, the
  i-th number of its ``as_feature()``;
- ``prev_action=<label>``, and for end-to-end bot turns also ``prev_text=<word>`` (optionally the
  parts of action names, ``prev_word=<part>``);
- the goal: ``active_loop=<form>``, ``requested_slot=<slot>``, ``missing=<slot>`` (still missing
  required slots of the active form).

Labels (what the policy predicts) are the domain's actions followed by its end-to-end bot texts.
The feature and label lists are saved in the model file, so a model never depends on how a domain
happens to be ordered when it is loaded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chatbot.conversation.state import (
    ACTIVE_LOOP,
    ENTITIES,
    INTENT,
    MISSING,
    PREV_ACTION,
    REQUESTED,
    SLOT_PREFIX,
    TEXT,
    State,
    featurized_slots,
)
from chatbot.project.domain import ACTION_DEACTIVATE_LOOP, Domain

PAD = "<pad>"
# A featurized state: feature indices and their values (same length, no duplicates).
Features = tuple[tuple[int, ...], tuple[float, ...]]

_WORD = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks; ``_placeholders_`` stay one word."""
    return _WORD.findall(text.lower())


def label_names(domain: Domain, bot_texts: Iterable[str] = ()) -> list[str]:
    """What the policy predicts: the domain's actions, then end-to-end bot texts (the domain's,
    then those only the training stories have)."""
    names = list(domain.action_names)
    return list(dict.fromkeys([*names, *domain.action_texts, *bot_texts]))


NO_ACTIVE_LOOP = "active_loop=null"


def domain_features(domain: Domain, labels: Sequence[str]) -> list[str]:
    """Every feature name a state of this domain can have, except words of texts."""
    names = [f"intent={i}" for i in domain.intent_names]
    for entity in domain.entities.values():
        names.append(f"entity={entity.name}")
        names.extend(f"entity={entity.name}#{extra}" for extra in (*entity.roles, *entity.groups))
    for slot in featurized_slots(domain):
        key = SLOT_PREFIX + slot.name
        if slot.kind is not None:  # a project's slot class: one feature per number it gives
            names += [f"{key}#{i}" for i in range(slot.kind.dimension)]
        elif slot.type == "bool":
            names += [key, f"{key}=true"]
        elif slot.type == "categorical":
            values = dict.fromkeys(str(v).lower() for v in slot.values)
            names += [f"{key}={v}" for v in (*values, "__other__")]
        elif slot.type == "float":
            names += [f"{key}#set", key]
        else:
            names.append(key)
    names += [f"prev_action={label}" for label in labels]
    names += [f"active_loop={form}" for form in domain.forms]
    if domain.forms:
        names.append(NO_ACTIVE_LOOP)
    names += [f"requested_slot={slot}" for slot in domain.slots]
    names += [f"missing={slot}" for slot in domain.slots]
    return list(dict.fromkeys(names))


class StateFeaturizer:
    """Maps states to sparse feature vectors and actions to label indices."""

    def __init__(self, features: Sequence[str], labels: Sequence[str]) -> None:
        self.features = [PAD, *(f for f in features if f != PAD)]
        self.index = {name: i for i, name in enumerate(self.features)}
        self.labels = list(labels)
        self.label_index = {name: i for i, name in enumerate(self.labels)}
        self._deactivate = self.label_index.get(ACTION_DEACTIVATE_LOOP)

    @classmethod
    def build(
        cls,
        domain: Domain,
        texts: Iterable[str] = (),
        bot_texts: Iterable[str] = (),
        *,
        min_word_count: int = 1,
        max_words: int = 20000,
        action_name_words: bool = False,
    ) -> StateFeaturizer:
        """The featurizer of a domain. ``texts`` (user messages without intent, from the training
        data) give the words of the ``text=`` features; end-to-end bot texts (the domain's and
        ``bot_texts`` from the stories) are labels, and their words ``prev_text=`` features.
        With ``action_name_words``, the parts of action names are ``prev_word=`` features
        (``inform_booking_hotel`` -> inform, booking, hotel), as Rasa's label tokenizer does."""
        labels = label_names(domain, bot_texts)
        names = domain_features(domain, labels)
        counts = Counter(w for t in texts for w in words(t))
        vocab = [w for w, n in counts.most_common(max_words) if n >= min_word_count]
        names += sorted(f"text={w}" for w in vocab)
        bot_words = {w for t in labels[len(domain.action_names) :] for w in words(t)}
        names += sorted(f"prev_text={w}" for w in bot_words)
        if action_name_words:
            parts = {w for name in domain.action_names for w in words(name.replace("_", " "))}
            names += sorted(f"prev_word={w}" for w in parts)
        return cls(names, labels)

    @property
    def num_features(self) -> int:
        return len(self.features)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def featurize(self, state: State, parse_data: Mapping[str, Any] | None = None) -> Features:
        """The state's features; with ``parse_data`` (the latest message) the intent part is the
        NLU's ``intent_ranking`` when it has one."""
        found: dict[int, float] = {}

        def put(name: str, value: float = 1.0) -> None:
            i = self.index.get(name)
            if i is not None and value != 0.0:
                found[i] = found.get(i, 0.0) + value

        for key, value in state:
            if key == ACTIVE_LOOP and value is None:
                # "No form is active" as a feature of its own (where the domain has forms): the
                # step right after a form finished differs from one where it asks on only here.
                put(NO_ACTIVE_LOOP)
            if value is None:
                continue
            if key == INTENT:
                ranking = (parse_data or {}).get("intent_ranking") or []
                if ranking and _top_name(ranking) == value:
                    for item in ranking:
                        put(f"intent={item.get('name')}", float(item.get("confidence") or 0.0))
                else:
                    put(f"intent={value}")
            elif key == ENTITIES:
                for name in value:
                    put(f"entity={name}")
            elif key == TEXT:
                for word in set(words(value)):
                    put(f"text={word}")
            elif key == PREV_ACTION:
                put(f"prev_action={value}")
                for word in set(words(value)):  # only bot texts' words are features
                    put(f"prev_text={word}")
                if " " not in value:  # an action name's parts, if they are features
                    for word in set(words(value.replace("_", " "))):
                        put(f"prev_word={word}")
            elif key == ACTIVE_LOOP:
                put(f"active_loop={value}")
            elif key == REQUESTED:
                put(f"requested_slot={value}")
            elif key == MISSING:
                for name in value:
                    put(f"missing={name}")
            elif key.startswith(SLOT_PREFIX):
                self._put_slot(key, value, put)
        ordered = sorted(found.items())
        return tuple(i for i, _ in ordered), tuple(v for _, v in ordered)

    def _put_slot(self, key: str, value: Any, put: Any) -> None:
        if isinstance(value, tuple):  # a project's slot class's numbers
            for i, number in enumerate(value):
                put(f"{key}#{i}", number)
        elif value is True:
            put(key)
            put(f"{key}=true")
        elif value is False:
            if f"{key}=true" in self.index:  # a bool slot set to false; an empty list is unset
                put(key)
        elif isinstance(value, float):
            put(f"{key}#set")
            put(key, value)
        elif isinstance(value, str):
            put(f"{key}={value}")
        else:
            put(key)

    def denied(self, state: State) -> tuple[int, ...]:
        """Labels that cannot apply in this state (no form to deactivate without an active one)."""
        if self._deactivate is None:
            return ()
        active = any(k == ACTIVE_LOOP and v for k, v in state)
        return () if active else (self._deactivate,)

    def label_words(self, label: str) -> list[str]:
        """Words of a label, for label-text features: a bot text's words, or an action name's
        parts (``utter_ask_cuisine`` -> utter, ask, cuisine)."""
        return words(label.replace("_", " ") if " " not in label else label)

    def to_meta(self) -> dict[str, Any]:
        return {"features": self.features[1:], "labels": self.labels}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> StateFeaturizer:
        features, labels = meta["features"], meta["labels"]
        for key, names in (("features", features), ("labels", labels)):
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"the featurizer's {key} must be a list of names")
        return cls(features, labels)


def _top_name(ranking: Sequence[Mapping[str, Any]]) -> Any:
    best = max(ranking, key=lambda item: float(item.get("confidence") or 0.0))
    return best.get("name")
