"""Training the LSTM policy: the example bots pass their test stories without memoization, the
same seed gives the same bytes, and bad data gets a clear message."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from chatbot.agent import Agent, TrainedModel
from chatbot.dialogue.lstm_policy import LSTMPolicy
from chatbot.errors import TrainingError
from chatbot.project.config import ComponentConfig
from chatbot.project.loader import load_project
from chatbot.project.project import Project
from training.augmentation import augment
from training.dialogue import train_policies, training_data
from training.evaluate import evaluate_stories, failed_stories_yaml
from training.lstm import LSTMSettings, make_lstm_trainer, settings_from_config, train_lstm

ROOT = Path(__file__).resolve().parents[2]
BOTS = {
    "moodbot": ROOT / "domains" / "moodbot",
    "restaurant": ROOT / "domains" / "restaurant",
    "starter": ROOT / "chatbot" / "project" / "starter",
}


def without_memoization(project: Project) -> Project:
    policies = tuple(p for p in project.config.policies if "Memoization" not in p.name)
    return dataclasses.replace(
        project, config=dataclasses.replace(project.config, policies=policies)
    )


@pytest.fixture(scope="module")
def trained() -> dict[str, TrainedModel]:
    """Each bot's dialogue policies as its config.yml has them, less memoization (no NLU)."""
    models = {}
    for name, root in BOTS.items():
        project = without_memoization(load_project(root))
        policies, ensemble = train_policies(
            project, lstm_trainer=make_lstm_trainer(seed=42, show_progress=False)
        )
        assert any(isinstance(p, LSTMPolicy) for p in policies)
        models[name] = TrainedModel(project.domain, policies, None, ensemble)
    return models


@pytest.mark.parametrize("bot", sorted(BOTS))
def test_every_test_story_passes_with_the_lstm_and_rules_alone(
    trained: dict[str, TrainedModel], bot: str
) -> None:
    evaluation = evaluate_stories(trained[bot], load_project(BOTS[bot]).test_stories)
    assert evaluation.results
    assert evaluation.action_accuracy == 1.0, failed_stories_yaml(evaluation.results)


async def test_a_trained_bot_answers_from_its_model_file(
    trained: dict[str, TrainedModel], tmp_path: Path
) -> None:
    path = tmp_path / "moodbot.model"
    trained["moodbot"].to_file(path)
    agent = Agent.load(path)
    try:
        replies = await agent.handle_text("/greet", "ann")
        assert replies and replies[0]["text"]
        assert await agent.handle_text("/mood_unhappy", "ann")
    finally:
        await agent.close()


def small_settings(**changes: object) -> LSTMSettings:
    return dataclasses.replace(
        LSTMSettings(epochs=8, hidden_size=16, embed_dim=8, augmentation_factor=2), **changes
    )


def test_the_same_seed_gives_byte_identical_tensors() -> None:
    project = load_project(BOTS["restaurant"])
    data = training_data(project)

    def tensors(seed: int) -> dict[str, np.ndarray]:
        policy = train_lstm(
            project.domain,
            data.stories,
            data.rules,
            small_settings(),
            seed=seed,
            show_progress=False,
        )
        return policy.export()[0]

    first, second, other = tensors(1), tensors(1), tensors(2)
    assert first.keys() == second.keys()
    for key in first:
        assert first[key].dtype == second[key].dtype
        assert first[key].tobytes() == second[key].tobytes(), key
    assert not np.array_equal(first["model.head.weight"], other["model.head.weight"])


def write_project(root: Path, domain: str, data: str) -> Project:
    (root / "data").mkdir(parents=True)
    (root / "domain.yml").write_text(domain)
    (root / "data" / "stories.yml").write_text(data)
    return load_project(root)


DOMAIN = """
version: "3.1"
intents: [greet, ask]
responses:
  utter_hello: [{text: hello}]
  utter_hi: [{text: hi}]
  utter_answer: [{text: "42"}]
"""


def test_contradicting_stories_are_named_in_an_error_line_and_training_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stories = """
version: "3.1"
stories:
- story: say hello
  steps: [{intent: greet}, {action: utter_hello}]
- story: say hi
  steps: [{intent: greet}, {action: utter_hi}]
- story: answer
  steps: [{intent: ask}, {action: utter_answer}]
"""
    project = write_project(tmp_path, DOMAIN, stories)
    data = training_data(project)
    with caplog.at_level(logging.ERROR, logger="training.lstm"):
        policy = train_lstm(project.domain, data.stories, (), small_settings(), show_progress=False)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "'say hello'" in errors[0] and "'say hi'" in errors[0]
    assert "utter_hello" in errors[0] and "utter_hi" in errors[0]
    assert isinstance(policy, LSTMPolicy)


def test_contradictions_between_the_trainings_own_copies_are_not_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Copies the training makes (a form's paths, rules put into stories, glued stories) may
    contradict each other where the user's stories do not: no error line names stories the
    user never wrote (rasa-3.x-form-examples' 03-conditions: '... (form path 3) (rule 1)')."""
    stories = """
version: "3.1"
stories:
- story: say hello
  steps: [{intent: greet}, {action: utter_hello}]
- story: say hi
  steps: [{intent: greet}, {action: utter_hi}]
"""
    project = write_project(tmp_path, DOMAIN, stories)
    copies = [replace(c, generated=True) for c in training_data(project).stories]
    with caplog.at_level(logging.ERROR, logger="training.lstm"):
        train_lstm(project.domain, copies, (), small_settings(), show_progress=False)
    assert not [r for r in caplog.records if r.levelno == logging.ERROR]


def test_no_story_to_learn_from_is_a_training_error(tmp_path: Path) -> None:
    project = write_project(tmp_path, DOMAIN, 'version: "3.1"\nstories: []\n')
    with pytest.raises(TrainingError, match="no story or rule has an action to learn"):
        train_lstm(project.domain, [], [], small_settings(), show_progress=False)


def test_end_to_end_stories_train_without_intents(tmp_path: Path) -> None:
    stories = """
version: "3.1"
stories:
- story: weather
  steps:
  - user: what is the weather like
  - bot: It is sunny.
  - user: thanks a lot
  - bot: You are welcome!
- story: time
  steps:
  - user: what time is it
  - bot: It is noon.
  - user: thanks
  - bot: You are welcome!
"""
    project = write_project(tmp_path, 'version: "3.1"\nintents: []\n', stories)
    policies, ensemble = train_policies(
        project, lstm_trainer=make_lstm_trainer(seed=0, show_progress=False)
    )
    model = TrainedModel(project.domain, policies, None, ensemble)
    evaluation = evaluate_stories(model, project.stories)
    assert evaluation.action_accuracy == 1.0, failed_stories_yaml(evaluation.results)
    lstm = next(p for p in policies if isinstance(p, LSTMPolicy))
    assert lstm.config.label_features  # bot texts are scored by their words


def many_stories(n: int) -> str:
    steps = [
        {"story": f"story {i}", "steps": [{"intent": "greet"}, {"action": "utter_hello"}]}
        if i % 2
        else {"story": f"story {i}", "steps": [{"intent": "ask"}, {"action": "utter_answer"}]}
        for i in range(n)
    ]
    return yaml.safe_dump({"version": "3.1", "stories": steps})


def test_enough_stories_hold_some_out_and_stop_early(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = write_project(tmp_path, DOMAIN, many_stories(60))
    data = training_data(project)
    settings = small_settings(epochs=500, patience=2, augmentation_factor=0)
    with caplog.at_level(logging.INFO, logger="training.lstm"):
        train_lstm(project.domain, data.stories, (), settings, show_progress=False)
    text = caplog.text
    assert "60 stories (6 held out)" in text
    assert "(stopped early)" in text and "best held-out accuracy 1.000" in text


EPOCH_LINE = re.compile(r"epoch (\d+): .* held-out accuracy ([\d.]+), loss ([\d.]+)")


def held_out_scores(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, **changes: object
) -> list[tuple[float, float]]:
    """The held-out (accuracy, loss) of each epoch trained, from the policy's debug lines."""
    project = write_project(tmp_path, DOMAIN, many_stories(60))
    data = training_data(project)
    settings = small_settings(epochs=60, augmentation_factor=0, learning_rate=0.03, **changes)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="training.lstm"):
        train_lstm(project.domain, data.stories, (), settings, show_progress=False)
    found = [EPOCH_LINE.search(r.getMessage()) for r in caplog.records]
    return [(float(m[2]), float(m[3])) for m in found if m]


def test_a_held_out_loss_creeping_down_does_not_keep_training_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # With min_delta 0 every lower held-out loss resets the patience (as before min_delta):
    # the toy stories' held-out accuracy is perfect from epoch 17, the loss falls on to 0.005.
    creeping = held_out_scores(tmp_path / "a", caplog, patience=3, min_delta=0.0)
    steady = held_out_scores(tmp_path / "b", caplog, patience=3, min_delta=0.02)
    assert creeping[: len(steady)] == steady  # the same seed: the same epochs until it stops
    assert len(steady) < len(creeping)
    # It stopped `patience` epochs after the last epoch that was progress: a higher accuracy,
    # or at the same accuracy a loss at least min_delta (0.02) under the last progress's.
    last, reference = 0, steady[0]
    for epoch, (accuracy, loss) in enumerate(steady[1:], start=1):
        if accuracy > reference[0] or (
            accuracy == reference[0] and reference[1] - loss >= 0.02 - 1e-5
        ):
            last, reference = epoch, (accuracy, loss)
    assert len(steady) == last + 1 + 3


def test_patience_0_stops_at_the_first_epoch_without_progress(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # It used to stop after the first epoch, whatever it did.
    scores = held_out_scores(tmp_path, caplog, patience=0, min_delta=0.02)
    assert len(scores) > 1
    *progress, last = scores
    for before, after in pairwise(progress):
        assert after[0] > before[0] or before[1] - after[1] >= 0.02 - 1e-5
    assert not (last[0] > progress[-1][0] or progress[-1][1] - last[1] >= 0.02 - 1e-5)


def test_the_progress_bar_shows_loss_and_accuracy_unless_switched_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_project(tmp_path, DOMAIN, many_stories(4))
    data = training_data(project)
    train_lstm(project.domain, data.stories, (), small_settings(epochs=2), show_progress=False)
    assert capsys.readouterr().err == ""
    train_lstm(project.domain, data.stories, (), small_settings(epochs=2), show_progress=True)
    err = capsys.readouterr().err
    assert "LSTMPolicy" in err and "loss=" in err and "acc=" in err


def test_rasa_ted_parameters_are_read_and_the_rest_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ComponentConfig(
        "TEDPolicy",
        {
            "epochs": 7,
            "max_history": 3,
            "batch_size": [16, 64],
            "drop_rate": 0.2,
            "random_seed": 5,
            "constrain_similarities": True,
            "number_of_transformer_layers": 2,
        },
    )
    with caplog.at_level(logging.INFO, logger="training.lstm"):
        settings = settings_from_config(config)
    assert (settings.epochs, settings.max_history, settings.batch_size) == (7, 3, 16)
    assert (settings.dropout, settings.random_seed) == (0.2, 5)
    # One line at INFO (shown by `chatbot train`) names every ignored key.
    assert [r.getMessage() for r in caplog.records] == [
        "TEDPolicy: settings constrain_similarities, number_of_transformer_layers have no "
        "counterpart in the LSTM policy and are ignored"
    ]
    with pytest.raises(TrainingError, match="'epochs' must be an int"):
        settings_from_config(ComponentConfig("LSTMPolicy", {"epochs": "many"}))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"epochs": 0}, "TEDPolicy: 'epochs' must be at least 1, got 0"),
        ({"learning_rate": -0.1}, "'learning_rate' must be above 0, got -0.1"),
        ({"max_history": -2}, "'max_history' must be at least 1"),
        ({"batch_size": [0, 64]}, "'batch_size' must be at least 1"),
        ({"drop_rate": 1.0}, "'drop_rate' must be at least 0 and under 1"),
        ({"hidden_size": 0}, "'hidden_size' must be at least 1"),
        ({"min_delta": -0.01}, "'min_delta' must be 0 or more, got -0.01"),
        ({"min_delta": "small"}, "'min_delta' must be a float, got 'small'"),
        # Numbers no float holds, and infinity for an int: were OverflowErrors (tracebacks)
        ({"epochs": 10**400}, "'epochs' is too large, got 1000"),
        ({"learning_rate": 10**400}, "'learning_rate' must be a float, got 1000"),
        ({"max_history": float("inf")}, "'max_history' must be an int, got inf"),
    ],
)
def test_settings_out_of_range_are_errors_naming_the_key(params: dict, match: str) -> None:
    with pytest.raises(TrainingError, match=match):
        settings_from_config(ComponentConfig("TEDPolicy", params))
    assert (
        settings_from_config(ComponentConfig("TEDPolicy", {"max_history": None})).max_history
        is None
    )


def test_augmentation_glues_stories_reproducibly() -> None:
    data = training_data(load_project(BOTS["restaurant"]))
    first = augment(data.stories, augmentation_factor=3, seed=7)
    again = augment(data.stories, augmentation_factor=3, seed=7)
    other = augment(data.stories, augmentation_factor=3, seed=8)
    assert len(first) == 30
    assert [c.name for c in first] == [c.name for c in again]
    assert [c.name for c in first] != [c.name for c in other]
    for glued in first:
        assert " + " in glued.name
        kinds = [(e["event"], e.get("name")) for e in glued.events]
        # One listen between the parts, never two in a row.
        assert all(not (a == b == ("action", "action_listen")) for a, b in pairwise(kinds))
        assert len(glued.events) == len(glued.targets) == len(glued.mentioned)
    assert augment(data.stories, augmentation_factor=0) == []


def test_rasa1_markdown_stories_for_the_multiwoz_benchmark(tmp_path: Path) -> None:
    from chatbot.project.stories import ActionStep, SlotStep, UserStep
    from training.benchmarks.rasa1_data import read_markdown_stories

    path = tmp_path / "stories.md"
    path.write_text(
        "## story_1\n"
        '* inform{"taxi_status": "available", "taxi_type": "specific"}\n'
        "   - request_taxi\n"
        '   - slot{"taxi_status": "booked"}\n'
        "* bye\n"
        "   - bye_general\n"
    )
    e2e_path = tmp_path / "e2e.md"
    e2e_path.write_text(
        "## story_2\n* I need a taxi to _place_ .\n   - When do you want to leave?\n"
    )
    modular = read_markdown_stories(path, end_to_end=False, slots=["taxi_status"])
    first = modular[0]
    assert first.name == "story_1"
    assert isinstance(first.steps[0], UserStep) and first.steps[0].intent == "inform"
    assert [e.entity for e in first.steps[0].entities] == ["taxi_status", "taxi_type"]
    assert first.steps[1] == SlotStep((("taxi_status", "available"),))  # entity -> slot
    assert first.steps[2] == ActionStep(name="request_taxi")
    assert first.steps[3] == SlotStep((("taxi_status", "booked"),))
    e2e = read_markdown_stories(e2e_path, end_to_end=True)[0]
    assert e2e.steps == (
        UserStep(text="I need a taxi to _place_ ."),
        ActionStep(text="When do you want to leave?"),
    )


def test_train_projects_augmentation_overrides_the_policys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``chatbot train --augmentation N`` (``train_project(augmentation=N)``) is the factor the
    LSTM policy glues stories with, whatever its config says; without it, the config's."""
    import training.lstm as lstm
    from chatbot.project.training_data import NLUData
    from tests.helpers import example_project
    from training.train import train_project

    factors: list[int] = []
    real = lstm.augment

    def spy(*args: Any, augmentation_factor: int, **kwargs: Any) -> Any:
        factors.append(augmentation_factor)
        return real(*args, augmentation_factor=augmentation_factor, **kwargs)

    monkeypatch.setattr(lstm, "augment", spy)
    project = example_project("moodbot")
    config = dataclasses.replace(
        project.config,
        policies=tuple(
            dataclasses.replace(p, params={**p.params, "epochs": 1, "augmentation_factor": 7})
            if p.name in ("TEDPolicy", "LSTMPolicy")
            else p
            for p in project.config.policies
        ),
    )
    project = dataclasses.replace(project, config=config, nlu=NLUData())  # the dialogue alone
    train_project(project, show_progress=False)
    train_project(project, show_progress=False, augmentation=0)
    assert factors == [7, 0]


@pytest.mark.parametrize(("rate", "shown"), [(1e37, "1e+37"), (1e38, "1e+38")])
def test_a_diverging_training_stops_with_an_error_naming_the_epoch(
    tmp_path: Path, rate: float, shown: str
) -> None:
    """A learning rate far too high makes the loss infinite or NaN (1e37), or the optimiser's
    step too large for float32 (1e38): training stops there with one line, instead of
    returning a policy whose every confidence is NaN (it would never answer) or a traceback."""
    project = write_project(tmp_path, DOMAIN, many_stories(4))
    data = training_data(project)
    settings = small_settings(learning_rate=rate)
    with pytest.raises(TrainingError) as raised:
        train_lstm(project.domain, data.stories, (), settings, show_progress=False)
    assert re.fullmatch(
        r"the LSTM policy: the training diverged in epoch \d+ \(the loss is no longer a "
        r"finite number\): lower its learning_rate \(now " + re.escape(shown) + r"\) in "
        r"config\.yml",
        str(raised.value),
    ), raised.value


def test_refit_trains_again_on_every_story_for_the_chosen_epochs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``refit``: after early stopping, a new tracker learns from the held-out stories too. The
    one story that says ``utter_hi`` is held out (seed 42's tenth): only the refitted tracker
    may predict it."""
    import random

    order = list(range(60))
    random.Random(42).shuffle(order)
    rare = order[0]  # the first held-out story
    stories = yaml.safe_load(many_stories(60))
    stories["stories"][rare]["steps"] = [
        {"intent": "ask"},
        {"action": "utter_answer"},
        {"intent": "greet"},
        {"action": "utter_hi"},
    ]
    project = write_project(tmp_path, DOMAIN, yaml.safe_dump(stories))
    data = training_data(project)
    trained = {}
    for refit in (False, True):
        settings = small_settings(epochs=40, patience=2, augmentation_factor=0, refit=refit)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="training.lstm"):
            policy = train_lstm(project.domain, data.stories, (), settings, show_progress=False)
        labels = policy.featurizer.labels
        trained[refit] = {labels[i] for i in np.flatnonzero(np.asarray(policy.trained))}
        again = re.search(r"trained again on every story for (\d+) epochs", caplog.text)
        if refit:
            assert again is not None
            scores = [
                (float(m[2]), -float(m[3]))
                for m in (EPOCH_LINE.search(r.getMessage()) for r in caplog.records)
                if m
            ]
            best = scores.index(max(scores)) + 1  # the first epoch with the best score
            assert "(stopped early)" in caplog.text and best < len(scores)
            (second,) = re.findall(r"LSTMPolicy: (\d+) epochs, loss", caplog.text)
            assert int(second) == int(again[1]) == best
        else:
            assert again is None
    assert "utter_hi" not in trained[False] and "utter_hi" in trained[True]
