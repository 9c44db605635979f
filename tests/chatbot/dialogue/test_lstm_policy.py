"""LSTMPolicy at prediction time: the per-conversation state cache equals a full recompute, and
the numpy runtime that serves it equals the torch tracker that training fits.

The tracker here has random weights: what is pinned is that one LSTM step per prediction gives
exactly what re-reading the whole conversation with the torch module gives, whatever the weights.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from chatbot.agent import TrainedModel
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
from chatbot.dialogue.featurizer import StateFeaturizer
from chatbot.dialogue.lstm_policy import LSTMPolicy, batch_features, step_features
from chatbot.dialogue.lstm_tracker import DialogueStateTracker, TrackerConfig
from chatbot.errors import ModelFileError
from chatbot.project.domain import (
    ACTION_DEACTIVATE_LOOP,
    ACTION_LISTEN,
    ACTION_SESSION_START,
    Domain,
)
from chatbot.project.domain_reader import domain_from_dict

DOMAIN = """
version: "3.1"
intents: [greet, inform, stop, affirm]
entities: [city]
slots:
  city: {type: text, mappings: [{type: from_entity, entity: city}]}
  vip: {type: bool, mappings: [{type: custom}]}
forms:
  trip_form: {required_slots: [city]}
responses:
  utter_greet: [{text: hi}]
  utter_ask_city: [{text: where}]
  utter_done: [{text: done}]
"""
BOT_ACTIONS = ("utter_greet", "utter_ask_city", "utter_done", "trip_form")


@pytest.fixture(scope="module")
def domain() -> Domain:
    return domain_from_dict(yaml.safe_load(DOMAIN))


# The torch tracker each test policy was made from: the reference the runtime must match.
MODULES: dict[int, DialogueStateTracker] = {}


def make_policy(domain: Domain, *, seed: int = 0, **config: Any) -> LSTMPolicy:
    model = make_tracker(domain, seed=seed, **config)
    trained = torch.ones(model.config.num_labels, dtype=torch.bool)
    policy = LSTMPolicy(model, StateFeaturizer.build(domain), trained)
    MODULES[id(policy)] = model.eval()
    return policy


def make_tracker(domain: Domain, *, seed: int = 0, **config: Any) -> DialogueStateTracker:
    featurizer = StateFeaturizer.build(domain)
    settings = TrackerConfig(
        featurizer.num_features, featurizer.num_labels, embed_dim=8, hidden_size=16, **config
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DialogueStateTracker(settings)
        nn.init.normal_(model.embed.weight)  # trained embeddings are not zero
        if settings.label_features:
            A = featurizer.num_labels
            idx = torch.randint(1, settings.label_features, (A, 3))
            model.set_label_words(idx, torch.full((A, 3), 1 / 3))
    return model


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny matrices: one thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def reference(policy: LSTMPolicy, conversation: Conversation) -> np.ndarray:
    """The prediction of the torch tracker re-reading the whole conversation from a fresh LSTM
    state, (A,)."""
    current = conversation.current_state()
    feats = [policy.features(s) for s in conversation.states]
    feats.append(policy.featurizer.featurize(current, conversation.latest_message))
    idx, val = batch_features([feats])
    with torch.inference_mode():
        logits, _, _ = MODULES[id(policy)](idx, val)  # (1, T+1, A), all steps in one nn.LSTM call
    allowed = torch.from_numpy(policy.trained.copy())
    for i in policy.featurizer.denied(current):
        allowed[i] = False
    return torch.softmax(logits[0, -1].masked_fill(~allowed, float("-inf")), dim=-1).numpy()


def user(intent: str, **extra: Any) -> dict[str, Any]:
    return ev.user(intent, {"intent": {"name": intent, "confidence": 1.0}, "entities": [], **extra})


def start() -> list[dict[str, Any]]:
    return [ev.action(ACTION_SESSION_START), ev.simple("session_started"), ev.action(ACTION_LISTEN)]


def play_turn(
    policy: LSTMPolicy, conversation: Conversation, rng: random.Random, *, check: bool = False
) -> int:
    """A user message, bot actions and a listen, with a prediction before each action; with
    ``check``, each prediction is compared with a full recompute. Returns how many were made."""
    made = 0

    def predict() -> None:
        nonlocal made
        got = policy.probabilities(conversation)
        assert got is not None
        if check:
            assert np.allclose(got, reference(policy, conversation), atol=1e-5), made
        made += 1

    conversation.append(user(rng.choice(["greet", "inform", "stop", "affirm"])))
    if rng.random() < 0.3:
        conversation.append(ev.slot("city", rng.choice([None, "Rome"])))
    for _ in range(rng.randint(1, 2)):
        predict()
        name = rng.choice(BOT_ACTIONS)
        # A form asking again on its happy path folds the turns since its last run out of
        # the history: the cached LSTM state must roll back.
        conversation.append(ev.action(name))
        if name == "trip_form":
            conversation.append(ev.active_loop(rng.choice(["trip_form", "trip_form", None])))
    predict()
    conversation.append(ev.action(ACTION_LISTEN))
    return made


@pytest.mark.parametrize("attention", [False, True])
def test_incremental_predictions_equal_a_full_recompute_over_hundreds_of_turns(
    domain: Domain, attention: bool
) -> None:
    policy = make_policy(domain, attention=attention, attention_window=4)
    rng = random.Random(7)
    conversation = Conversation("long", domain, start())
    folds = 0
    for turn in range(300):
        if turn % 50 == 49:
            # The server rebuilds the conversation from the store for every message.
            conversation = Conversation("long", domain, conversation.events)
        before = len(conversation.states)
        made = play_turn(policy, conversation, rng, check=True)
        folds += len(conversation.states) < before + made
    assert folds > 10  # the form folded turns out of the history, many times
    policy.probabilities(conversation)
    assert policy.cached_states("long") == len(conversation.states)


def test_a_new_turn_costs_one_lstm_step(domain: Domain) -> None:
    policy = make_policy(domain)
    rng = random.Random(1)
    conversation = Conversation("u", domain, start())
    for _ in range(200):
        play_turn(policy, conversation, rng)
    steps: list[int] = []
    runtime = policy.runtime
    forward = runtime.forward

    def counted(idx: np.ndarray, *args: Any) -> Any:  # every run, with how many steps it ran
        steps.append(idx.shape[0])
        return forward(idx, *args)

    runtime.forward = counted  # type: ignore[method-assign]
    before = runtime.steps_run
    conversation = Conversation("u", domain, conversation.events)  # as the server does
    conversation.append(user("greet"))
    policy.probabilities(conversation)
    conversation.append(ev.action("utter_greet"))
    policy.probabilities(conversation)
    assert steps == [1, 1] and runtime.steps_run - before == 2


@pytest.mark.parametrize(
    "rewrite",
    [
        [ev.simple("restart")],
        [ev.action(ACTION_SESSION_START), ev.simple("session_started")],
        [ev.simple("undo")],
        [ev.simple("rewind")],
        [ev.simple("undo"), ev.simple("undo"), ev.action("utter_done")],
    ],
    ids=["restart", "session-start", "undo", "rewind", "undo-then-act"],
)
def test_restart_session_start_undo_and_rewind_rebuild_the_state(
    domain: Domain, rewrite: list[dict[str, Any]]
) -> None:
    policy = make_policy(domain)
    rng = random.Random(3)
    conversation = Conversation("u", domain, start())
    for _ in range(30):
        play_turn(policy, conversation, rng)
    conversation.append(user("inform"))
    conversation.append(ev.action("utter_ask_city"))
    policy.probabilities(conversation)
    conversation.extend(rewrite)
    after = policy.probabilities(conversation)
    assert after is not None
    assert np.allclose(after, reference(policy, conversation), atol=1e-5)
    assert policy.cached_states("u") == len(conversation.states)
    # ... and the conversation goes on incrementally from there.
    for _ in range(5):
        play_turn(policy, conversation, rng, check=True)


def test_another_conversation_under_the_same_id_is_not_mistaken_for_the_cached_one(
    domain: Domain,
) -> None:
    policy = make_policy(domain)
    first = Conversation("same", domain, start())
    for _ in range(5):
        play_turn(policy, first, random.Random(1))
    second = Conversation("same", domain, start())
    rng = random.Random(2)
    for _ in range(6):
        play_turn(policy, second, rng, check=True)


def test_nlu_probabilities_feed_only_the_current_step(domain: Domain) -> None:
    policy = make_policy(domain)
    conversation = Conversation("u", domain, start())
    ranking = [{"name": "inform", "confidence": 0.6}, {"name": "stop", "confidence": 0.4}]
    for _ in range(20):
        conversation.append(user("inform", intent_ranking=ranking))
        got = policy.probabilities(conversation)
        assert got is not None
        assert np.allclose(got, reference(policy, conversation), atol=1e-5)
        conversation.append(ev.action("utter_ask_city"))
        conversation.append(ev.action(ACTION_LISTEN))
    one_hot = make_policy(domain)
    one_hot.use_intent_ranking = False
    assert not np.allclose(one_hot.probabilities(conversation), got)


def test_max_history_reads_only_the_last_states(domain: Domain) -> None:
    policy = make_policy(domain, max_history=3)
    conversation = Conversation("u", domain, start())
    for _ in range(10):
        play_turn(policy, conversation, random.Random(5))
    recent = conversation.recent_states(3)
    idx, val = batch_features([[policy.featurizer.featurize(s) for s in recent]])
    with torch.inference_mode():
        logits = MODULES[id(policy)](idx, val)[0][0, -1]
    expected = torch.softmax(logits, -1).numpy()
    assert np.allclose(policy.probabilities(conversation), expected, atol=1e-5)
    assert policy.cached_states("u") is None


@pytest.mark.parametrize("config", [{}, {"label_features": 10, "label_weights": False}])
def test_scores_of_a_few_steps_are_the_same_step_by_step(
    domain: Domain, config: dict[str, Any]
) -> None:
    """At prediction time scores go one step at a time (no thread waits on a busy CPU)."""
    model = make_tracker(domain, **config)
    z = torch.randn(2, 5, model.config.hidden_size)
    with torch.inference_mode():
        stepwise = model.eval().scores(z)
        batched = model.train().scores(z)  # no dropout in the head
    assert stepwise.shape == batched.shape == (2, 5, model.config.num_labels)
    assert torch.allclose(stepwise, batched, atol=1e-6)


def test_masked_actions_are_never_predicted(domain: Domain) -> None:
    policy = make_policy(domain)
    conversation = Conversation("u", domain, [*start(), user("stop")])
    best = policy.predict(conversation)
    assert best is not None and best.policy == "LSTMPolicy" and best.priority == 1
    probs = policy.probabilities(conversation, {best.action})
    assert probs is not None
    assert float(probs[policy.featurizer.label_index[best.action]]) == 0.0
    # No active form: nothing to deactivate.
    assert float(probs[policy.featurizer.label_index[ACTION_DEACTIVATE_LOOP]]) == 0.0
    assert policy.predict(conversation, set(policy.featurizer.labels)) is None


def test_the_cache_is_bounded(domain: Domain) -> None:
    policy = make_policy(domain)
    policy.cache_size = 2
    for sender in ("a", "b", "c"):
        policy.probabilities(Conversation(sender, domain, [*start(), user("greet")]))
    assert policy.cached_states("a") is None
    assert policy.cached_states("b") is not None and policy.cached_states("c") is not None
    policy.forget("c")
    assert policy.cached_states("c") is None


@pytest.mark.parametrize(
    "config",
    [
        {"attention": True},
        {"num_layers": 2, "skip_input": True},
        {"label_features": 6, "label_weights": False},
    ],
    ids=["attention", "two-layers-skip", "label-words"],
)
def test_the_policy_round_trips_through_the_model_file(
    domain: Domain, tmp_path: Path, config: dict[str, Any]
) -> None:
    policy = make_policy(domain, **config)
    path = tmp_path / "bot.model"
    TrainedModel(domain, [policy]).to_file(path)
    loaded = TrainedModel.from_file(path).policies[0]
    assert isinstance(loaded, LSTMPolicy) and loaded.config == policy.config
    conversation = Conversation("u", domain, start())
    rng = random.Random(9)
    for _ in range(5):
        play_turn(policy, conversation, rng, check=True)  # incremental == full here too
    # Both from scratch: the same arithmetic on the same parameters, bit for bit (the policy's
    # own cached, step-by-step state can differ in the last bit where the CPU's BLAS sums in
    # another order).
    policy.forget(conversation.sender_id)
    assert np.array_equal(loaded.probabilities(conversation), policy.probabilities(conversation))


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"attention": True, "attention_window": 3},
        {"num_layers": 2, "skip_input": True},
        {"label_features": 6, "label_weights": False},
        {"label_features": 6, "attention": True, "skip_input": True, "num_layers": 2},
    ],
    ids=["plain", "attention", "two-layers-skip", "label-words", "everything"],
)
def test_the_numpy_runtime_computes_what_the_torch_tracker_computes(
    domain: Domain, config: dict[str, Any]
) -> None:
    model = make_tracker(domain, seed=4, **config).eval()
    runtime = LSTMPolicy(
        model, StateFeaturizer.build(domain), np.ones(model.config.num_labels)
    ).runtime
    rng = np.random.default_rng(0)
    T, K = 12, 5
    idx = rng.integers(0, model.config.num_features, (T, K))
    val = rng.random((T, K)).astype(np.float32)
    val[idx == 0] = 0.0
    with torch.inference_mode():  # all steps at once (nn.LSTM), and in two parts with memory
        logits, (h, c), out = model(torch.from_numpy(idx)[None], torch.from_numpy(val)[None])
    got, (gh, gc), gout = runtime.forward(idx[:7], val[:7])
    more, (gh, gc), mout = runtime.forward(idx[7:], val[7:], (gh, gc), gout)
    assert np.allclose(np.concatenate([got, more]), logits[0].numpy(), atol=1e-5)
    assert np.allclose(np.concatenate([gout, mout]), out[0].numpy(), atol=1e-5)
    assert np.allclose(gh, h[:, 0].numpy(), atol=1e-5) and np.allclose(
        gc, c[:, 0].numpy(), atol=1e-5
    )
    assert step_features([((1, 2), (0.5, 1.0)), ((3,), (1.0,))])[0].tolist() == [[1, 2], [3, 0]]


def test_serving_a_policy_never_imports_torch(domain: Domain, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "bot.model"
    TrainedModel(domain, [make_policy(domain, attention=True)]).to_file(path)
    script = f"""
import sys
from chatbot.agent import TrainedModel
from chatbot.conversation import events as ev
from chatbot.conversation.conversation import Conversation
model = TrainedModel.from_file(__import__("pathlib").Path({str(path)!r}))
conv = Conversation("u", model.domain, [ev.action("action_listen")])
conv.append(ev.user("hi", {{"intent": {{"name": "greet", "confidence": 1.0}}}}))
assert model.policies[0].predict(conv) is not None
print("torch" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False", "torch was imported"


def test_weights_that_do_not_fit_the_settings_are_a_model_file_error(domain: Domain) -> None:
    policy = make_policy(domain)
    tensors, meta = policy.export()
    wrong = {**meta, "config": {**meta["config"], "hidden_size": 32}}
    with pytest.raises(ModelFileError, match=r"lstm.weight_ih_l0 is \(64, 8\)"):
        LSTMPolicy.from_export(tensors, wrong)
    missing = {k: v for k, v in tensors.items() if k != "model.embed_bias"}
    with pytest.raises(ModelFileError, match="embed_bias is missing"):
        LSTMPolicy.from_export(missing, meta)
