"""A model file whose checksum is right but whose parts do not fit together (written by hand, by
another tool or by a hostile client of ``PUT /model``) is refused when it is loaded, with a
``ModelFileError`` naming the file and the part, instead of being served and failing every
conversation (or the server) later."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chatbot import model_file
from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ModelFileError
from chatbot.store import InMemoryStore
from tests.chatbot.nlu.toy import trained_toy_model
from tests.helpers import dialogue_model

Meta = dict[str, Any]
Tensors = dict[str, np.ndarray]
Change = Callable[[Meta, Tensors], None]


@pytest.fixture(scope="module")
def full_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The restaurant bot's policies (rules, memoization, the LSTM) with the toy NLU model."""
    trained = dialogue_model("restaurant")
    model = TrainedModel(trained.domain, trained.policies, trained_toy_model(), trained.ensemble)
    path = tmp_path_factory.mktemp("check") / "full.model"
    model.to_file(path)
    return path


def rewritten(source: Path, target: Path, change: Change) -> Path:
    """``source``'s content changed by ``change``, saved with a valid checksum."""
    meta, tensors = model_file.load(source)
    meta, tensors = copy.deepcopy(meta), dict(tensors)
    change(meta, tensors)
    model_file.save(target, meta, tensors)
    return target


def lstm_index(meta: Meta) -> int:
    return next(i for i, p in enumerate(meta["policies"]) if p["name"] == "LSTMPolicy")


def policy_meta(meta: Meta, name: str) -> Meta:
    return next(p["meta"] for p in meta["policies"] if p["name"] == name)


def cut(name: str) -> Change:
    """The tensor ``name`` (a prefix of the model's key) one row shorter."""

    def change(meta: Meta, tensors: Tensors) -> None:
        key = next(k for k in tensors if k.startswith(name.format(lstm=lstm_index(meta))))
        tensors[key] = tensors[key][:-1].copy()

    return change


def set_rule_value(value: Any) -> Change:
    def change(meta: Meta, tensors: Tensors) -> None:
        rules = policy_meta(meta, "RulePolicy")["rules"]
        rule = next(r for r in rules if r["states"] and r["states"][-1])
        rule["states"][-1][0][1] = value

    return change


def set_label(value: Any) -> Change:
    def change(meta: Meta, tensors: Tensors) -> None:
        policy_meta(meta, "LSTMPolicy")["featurizer"]["labels"][0] = value

    return change


def set_nlu(key: str, value: Any) -> Change:
    def change(meta: Meta, tensors: Tensors) -> None:
        meta["nlu"]["featurizer"][key] = value

    return change


def set_domain_response(meta: Meta, tensors: Tensors) -> None:
    name = next(iter(meta["domain"]["responses"]))
    meta["domain"]["responses"][name][0] = 1.5


def set_ensemble(meta: Meta, tensors: Tensors) -> None:
    meta["ensemble"] = {"fallback_threshold": "high"}


def extra_label(meta: Meta, tensors: Tensors) -> None:
    policy_meta(meta, "LSTMPolicy")["featurizer"]["labels"].append("utter_extra")


def memo_entry(meta: Meta, tensors: Tensors) -> None:
    policy_meta(meta, "MemoizationPolicy")["lookup"][0] = {"a": 1}


def memo_index(value: Any) -> Change:
    def change(meta: Meta, tensors: Tensors) -> None:
        policy_meta(meta, "MemoizationPolicy")["lookup"][0][0][-1] = value

    return change


def memo_states(meta: Meta, tensors: Tensors) -> None:
    policy_meta(meta, "MemoizationPolicy")["states"] = {"a": 1}


def stray_tensor(meta: Meta, tensors: Tensors) -> None:
    tensors[f"policy.{lstm_index(meta)}.model.extra"] = np.zeros(3, np.float32)


def without(key: str) -> Change:
    def change(meta: Meta, tensors: Tensors) -> None:
        del meta[key]

    return change


def set_meta(key: str, value: Any) -> Change:
    def change(meta: Meta, tensors: Tensors) -> None:
        meta[key] = value

    return change


def null_nlu_labels(meta: Meta, tensors: Tensors) -> None:
    meta["nlu"]["labels"] = None


def not_a_number(prefix: str) -> Change:
    """One weight of the first tensor named ``prefix...`` NaN, as a diverged training leaves
    them (its bot answered nothing: every confidence NaN)."""

    def change(meta: Meta, tensors: Tensors) -> None:
        key = next(k for k in sorted(tensors) if k.startswith(prefix.format(lstm=lstm_index(meta))))
        tensors[key] = tensors[key].astype(np.float32)
        tensors[key].flat[0] = np.nan

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # The LSTM tracker's tensors against its settings (served, these failed every message).
        (cut("policy.{lstm}.model.head.bias"), r"head\.bias is \(\d+,\), the settings say"),
        (cut("policy.{lstm}.model.embed_bias"), r"embed_bias is \(\d+,\), the settings say"),
        (cut("policy.{lstm}.model.lstm.bias_ih_l0"), r"bias_ih_l0 is \(\d+,\)"),
        (cut("policy.{lstm}.trained"), "'trained' mask"),
        (stray_tensor, "unknown tensors extra"),
        (extra_label, r"featurizer's labels \(\d+\) do not match"),
        # Names and states the policies compare and hash (failed when a rule or label was reached).
        (set_label(0), "labels must be a list of names"),
        (set_rule_value({"a": 1}), r"\{'a': 1\} is no value"),
        (set_rule_value([1]), r"\[1\] is no value"),
        (memo_entry, "a memorized entry is a list"),
        (memo_index(10**6), "a memorized key names state 1000000, the table has"),
        (memo_index(True), "a memorized key names state True"),
        (memo_index(-1), "a memorized key names state -1"),
        (memo_states, "the memorized states must be a list"),
        # The NLU's featurizer (failed on every parse, or raised an AssertionError on load).
        (set_nlu("max_word_chars", 0), "max_word_chars must be at least 1"),
        (set_nlu("pattern_features", False), "fails on a first message"),
        # The domain's and the ensemble's own checks (were a ProjectErrors / a 500 on PUT /model).
        (set_domain_response, "content is invalid: each variation of response"),
        (set_ensemble, "fails on a first message"),
        # Entries missing or of the wrong kind: named in words, not as a Python exception.
        (without("domain"), r"the model has no domain \(its metadata lacks 'domain'\)"),
        (without("policies"), "the model has no list of dialogue policies"),
        (without("nlu"), r"the model has no NLU entry \(its metadata lacks 'nlu'\)"),
        (set_meta("domain", 5), "the model's domain must be a JSON object, found a number"),
        (set_meta("policies", {"a": 1}), "dialogue policies must be a JSON list, found an object"),
        (set_meta("policies", ["RulePolicy"]), "the model's policy 1 has no name"),
        (
            set_meta("nlu", [1]),
            "the model's NLU entry must be a JSON object or null, found an array",
        ),
        (null_nlu_labels, r"the model's NLU is damaged \(a value in it is of the wrong kind\)"),
        # Weights that are not numbers (a training that diverged).
        (not_a_number("nlu."), "the NLU model has weights that are not numbers"),
        (
            not_a_number("policy.{lstm}.model."),
            "the policy LSTMPolicy has weights that are not numbers .* lower learning_rate",
        ),
    ],
)
def test_a_model_whose_parts_do_not_fit_is_refused(
    full_model: Path, tmp_path: Path, change: Change, message: str
) -> None:
    bad = rewritten(full_model, tmp_path / "bad.model", change)
    with pytest.raises(ModelFileError, match=message) as raised:
        TrainedModel.from_file(bad)
    assert str(raised.value).startswith(str(bad)), "the message names the file"
    assert "\n" not in str(raised.value)
    assert "Error(" not in str(raised.value), "no Python exception's text"


def test_the_model_as_saved_passes_the_check(full_model: Path, tmp_path: Path) -> None:
    same = rewritten(full_model, tmp_path / "same.model", lambda meta, tensors: None)
    model = TrainedModel.from_file(same)
    lstm = next(p for p in model.policies if p.name == "LSTMPolicy")
    # The check's scratch conversation leaves nothing behind in the policy's cache.
    assert not lstm._cache  # type: ignore[attr-defined]


async def test_random_changes_are_refused_or_answer(full_model: Path, tmp_path: Path) -> None:
    """Random values put anywhere in the metadata, random tensors cut short or dropped: every
    file is either refused with a ModelFileError or loads and answers a conversation."""
    meta0, tensors0 = model_file.load(full_model)
    paths = list(_paths(meta0))
    values: list[Any] = [None, 0, -1, 10**12, 1.5, "", "x", [], {}, [1], {"a": 1}, True]
    rng = random.Random(3)
    outcomes = {"refused": 0, "answers": 0}
    for i in range(60):
        path = tmp_path / f"m{i}.model"
        if i % 3:
            where = rng.choice(paths)
            value = copy.deepcopy(rng.choice(values))

            def change(
                meta: Meta, tensors: Tensors, where: Any = where, value: Any = value
            ) -> None:
                parent = meta
                for key in where[:-1]:
                    parent = parent[key]
                parent[where[-1]] = value

        else:
            name = rng.choice(sorted(tensors0))

            def change(meta: Meta, tensors: Tensors, name: str = name) -> None:
                if tensors[name].ndim and len(tensors[name]) > 1:
                    tensors[name] = tensors[name][:-1].copy()
                else:
                    del tensors[name]

        rewritten(full_model, path, change)
        try:
            model = TrainedModel.from_file(path)
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        agent = Agent(model, store=InMemoryStore())
        try:
            for text in ("/greet", "hello", "/request_restaurant", "", "/affirm"):
                await agent.handle_text(text, "fuzz")
        finally:
            await agent.close()
        outcomes["answers"] += 1
    assert outcomes["refused"] and outcomes["answers"], outcomes


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Any:
    """Where a value can be put: every key of every object, the first items of every list."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj[:3]):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))
