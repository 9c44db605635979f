"""A Rasa 3 project's custom NLU components (``- name: addons.x.Class`` in config.yml) run beside
our model as Rasa runs them: before it or after it by their place in the pipeline, trained and
persisted through the model file, loaded when a model is served; broken ones are clear errors at
training and cost a served message nothing but their own output."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError, ModelFileError, TrainingError
from chatbot.nlu import NLUModel
from chatbot.rasa_compat.loading import inside as _inside
from tests.helpers import (
    RULES_ONLY,
    code_package,
    json_printed_by,
    project_files,
    train_files,
)

SOURCE = Path(__file__).parent / "components" / "addon.py"
DOMAIN = (
    "intents: [greet, book]\nentities: [sentiment]\n"
    "slots:\n  mood:\n    type: text\n    mappings:\n"
    "      - type: from_entity\n        entity: sentiment\n"
    "responses:\n  utter_hi:\n    - text: Hi!\n"
)
NLU = (
    "nlu:\n- intent: greet\n  examples: |\n    - hello\n    - hello there\n    - hi\n"
    "    - hello friend\n"
    "- intent: book\n  examples: |\n    - book a table\n    - a table please\n"
    "    - reserve a table\n    - book me a table for two\n"
)
RULES = "rules:\n- rule: hi\n  steps:\n  - intent: greet\n  - action: utter_hi\n"


def pipeline(package: str, *, extra: str = "") -> str:
    return (
        RULES_ONLY
        + "pipeline:\n"
        + f"  - name: {package}.addon.SpellFixer\n"
        + "  - name: WhitespaceTokenizer\n"
        + "  - name: DIETClassifier\n    epochs: 40\n"
        + f"  - name: {package}.addon.SentimentAnalyzer\n    positive: [love, adore]\n"
        + f"  - name: {package}.addon.KeywordCounter\n"
        + extra
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A project folder with the components in a package of a name of its own (modules stay
    imported across the tests)."""
    root = tmp_path_factory.mktemp("custom")
    yield root, code_package(root, "addons", {"addon": SOURCE.read_text()})


@pytest.fixture(scope="module")
def model(project: tuple[Path, str]) -> TrainedModel:
    root, package = project
    files = {"domain.yml": DOMAIN, "data/nlu.yml": NLU, "data/rules.yml": RULES}
    return train_files(root, {**files, "config.yml": pipeline(package)})


def nlu_of(model: TrainedModel) -> NLUModel:
    assert isinstance(model.nlu, NLUModel)
    return model.nlu


def test_components_run_before_and_after_our_model(model: TrainedModel) -> None:
    parsed: dict[str, Any] = dict(nlu_of(model).parse("helo I love it"))

    assert parsed["text"] == "hello I love it"  # SpellFixer ran first; our model read its text
    assert parsed["intent"]["name"] == "greet"
    assert parsed["seen_intent_before"] is None  # before the classifier: no intent yet
    assert parsed["seen_intent_after"] == "greet"  # after it: the intent
    (sentiment,) = [e for e in parsed["entities"] if e["entity"] == "sentiment"]
    assert sentiment == {
        "entity": "sentiment",
        "value": "positive",
        "start": 8,
        "end": 12,
        "confidence": 1.0,
        "extractor": "SentimentAnalyzer",
    }
    assert parsed["keyword_intent"] == "book" if "table" in parsed["text"] else True
    assert "text_tokens" not in parsed  # tokens are for components, not parse data
    # Entities found before our model stay, before its own (as DIET appends to them).
    assert parsed["entities"][0] == {"entity": "fixed", "value": 1}


def test_config_reaches_the_component_over_its_defaults(model: TrainedModel) -> None:
    parsed = nlu_of(model).parse("hello I adore it")  # config.yml's list, not the default's
    assert [e["value"] for e in parsed["entities"] if e["entity"] == "sentiment"] == ["positive"]
    assert not [e for e in nlu_of(model).parse("hello great")["entities"]]  # the default's word


def test_a_trained_component_goes_through_the_model_file(
    model: TrainedModel, tmp_path: Path
) -> None:
    """Served by a fresh process from another folder: the code is imported from the project's
    folder recorded at training, the trained component's files come out of the model file, the
    parses are the training process's, and torch is not imported."""
    assert nlu_of(model).parse("reserve it")["keyword_intent"] == "book"  # type: ignore[typeddict-item]
    path = tmp_path / "model.chatbot"
    model.to_file(path)
    texts = ["helo I love it", "reserve a table", "hi"]
    script = (
        "import json, sys\n"
        "from chatbot.agent import TrainedModel\n"
        f"model = TrainedModel.from_file(__import__('pathlib').Path({str(path)!r}))\n"
        "(counter,) = [c for c in model.nlu.custom.components if c.trainable]\n"
        f"print(json.dumps({{'parses': [model.nlu.parse(t) for t in {texts!r}],\n"
        "    'keywords': counter.instance.keywords, 'torch': 'torch' in sys.modules}))\n"
    )
    served = json_printed_by(script, tmp_path)
    assert served["parses"] == [json.loads(json.dumps(nlu_of(model).parse(t))) for t in texts]
    assert served["keywords"]["reserve"] == "book"
    assert served["torch"] is False


async def test_the_agent_parses_with_them_and_fills_slots(model: TrainedModel) -> None:
    agent = Agent(model)
    answer = await agent.handle_text("helo, I love this", sender_id="u1")
    assert [m["text"] for m in answer] == ["Hi!"]
    events = (await agent.store.load("u1")).events
    (user,) = [e for e in events if e["event"] == "user"]
    assert user["parse_data"]["seen_intent_after"] == "greet"
    assert {"event": "slot", "name": "mood", "value": "positive"}.items() <= next(
        e for e in events if e["event"] == "slot" and e["name"] == "mood"
    ).items()
    await agent.close()


def test_a_failing_component_costs_only_its_own_output(
    model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    nlu = nlu_of(model)
    with caplog.at_level(logging.ERROR, logger="chatbot.nlu.custom"):
        first = dict(nlu.parse("hello boom"))
        second = dict(nlu.parse("hello boom again"))
    assert "sentiment_partial" not in first  # what it set before it raised is dropped
    assert first["entities"] == []
    assert first["keyword_intent"] == "greet"  # the component after it still ran
    assert first["intent"]["name"] == "greet"
    assert second["intent"]["name"] == "greet"
    errors = [r for r in caplog.records if "SentimentAnalyzer" in r.getMessage()]
    assert len(errors) == 2
    assert "the lexicon exploded" in errors[0].getMessage()
    assert errors[0].exc_info and not errors[1].exc_info  # one traceback


@pytest.mark.parametrize(
    ("entry", "module", "expected"),
    [
        ("{p}.missing.Thing", None, "no module '{p}' (looked in "),
        ("{p}.plain.Plain", "class Plain:\n    def process(self, m): return m\n", "not a custom"),
        ("{p}.plain.Gone", "class Plain: pass\n", "has no class 'Gone'"),
        (
            "{p}.policy.Mine",
            "from rasa.core.policies.policy import Policy\nclass Mine(Policy): pass\n",
            "it is a policy: list it under policies",
        ),
        ("{p}.broken.X", "raise ValueError('typo in the module')\n", "typo in the module"),
        (
            "{p}.agent.A",
            "from rasa.core.agent import Agent\n",
            "it imports rasa.core.agent, which chatbot does not provide",
        ),
        (
            "{p}.tok.Tok",
            "from rasa.nlu.tokenizers.tokenizer import Tokenizer\nclass Tok(Tokenizer):\n"
            "    def process(self, m): return m\n",
            "it is a tokenizer",
        ),
        (
            "{p}.loader.L",
            "from rasa.engine.graph import GraphComponent\n"
            "from rasa.engine.recipes.default_recipe import DefaultV1Recipe\n"
            "@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MODEL_LOADER], False)\n"
            "class L(GraphComponent):\n    def process(self, m): return m\n",
            "language-model loader",
        ),
    ],
)
def test_a_bad_component_is_a_config_error_naming_its_line(
    tmp_path: Path, entry: str, module: str | None, expected: str
) -> None:
    package = f"bad_{uuid.uuid4().hex[:8]}"
    files = {"domain.yml": DOMAIN, "data/nlu.yml": NLU, "data/rules.yml": RULES}
    if module is not None:
        files[f"{package}/__init__.py"] = ""
        files[f"{package}/{entry.split('.')[1]}.py"] = module
    config = (
        RULES_ONLY + "pipeline:\n  - name: WhitespaceTokenizer\n  - name: DIETClassifier\n"
        f"  - name: {entry.format(p=package)}\n"
    )
    with pytest.raises(ConfigError) as raised:
        train_files(tmp_path, {**files, "config.yml": config})
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'config.yml'}:5: ")
    assert expected.format(p=package) in message


def test_a_component_failing_to_train_is_a_training_error(tmp_path: Path) -> None:
    package = f"failing_{uuid.uuid4().hex[:8]}"
    module = (
        "from rasa.engine.graph import GraphComponent\n"
        "from rasa.engine.recipes.default_recipe import DefaultV1Recipe\n"
        "@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], True)\n"
        "class C(GraphComponent):\n"
        "    @classmethod\n    def create(cls, config, storage, resource, context):\n"
        "        return cls()\n"
        "    def train(self, data):\n        raise KeyError('no such column')\n"
        "    def process(self, messages):\n        return messages\n"
    )
    files = {
        "domain.yml": DOMAIN,
        "data/nlu.yml": NLU,
        "data/rules.yml": RULES,
        f"{package}/__init__.py": "",
        f"{package}/c.py": module,
        "config.yml": RULES_ONLY
        + f"pipeline:\n  - name: DIETClassifier\n  - name: {package}.c.C\n",
    }
    with pytest.raises(
        TrainingError, match=r"config.yml:4: custom NLU component .*train\(\) failed: KeyError"
    ):
        train_files(tmp_path, files)


def test_a_model_whose_code_is_gone_is_a_clear_error(
    project: tuple[Path, str], tmp_path: Path, model: TrainedModel
) -> None:
    _, package = project
    tensors, meta = nlu_of(model).export()
    meta = dict(meta)
    custom = dict(meta["custom_components"])  # type: ignore[arg-type]
    custom["components"] = [
        {**c, "name": c["name"].replace(package, "nowhere_pkg")} for c in custom["components"]
    ]
    meta["custom_components"] = custom
    with pytest.raises(ModelFileError, match=r"no module 'nowhere_pkg'.*project's folder"):
        NLUModel.from_export(tensors, meta)


@pytest.mark.parametrize("path", ["../escape.json", "/etc/passwd", "a/../../b", ""])
def test_a_stored_file_cannot_leave_the_component_storage(tmp_path: Path, path: str) -> None:
    with pytest.raises(ModelFileError, match="is invalid"):
        _inside(tmp_path, "0_KeywordCounter", path)
    assert _inside(tmp_path, "0_K", "nested/k.json") == tmp_path / "0_K" / "nested" / "k.json"


def test_data_validate_reports_a_missing_component(tmp_path: Path) -> None:
    files = {
        "domain.yml": DOMAIN,
        "data/nlu.yml": NLU,
        "config.yml": "pipeline:\n  - name: DIETClassifier\n  - name: nothere_x.y.Z\n",
    }
    project = project_files(tmp_path, files)
    from training.train import check_config

    with pytest.raises(ConfigError, match=r"config.yml:3: custom NLU component 'nothere_x.y.Z'"):
        check_config(project)


async def test_a_message_goes_through_them_off_the_event_loop(
    model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project's code may take its time (a remote spell checker): even a short message's
    parse runs in a worker thread once a model has custom components."""
    nlu = nlu_of(model)
    threads: list[int] = []
    parse = nlu.parse

    def recorded(text: str) -> Any:
        threads.append(threading.get_ident())
        return parse(text)

    monkeypatch.setattr(nlu, "parse", recorded)
    parsed = await nlu.parse_async("helo")
    assert parsed["text"] == "hello"
    assert threads and threads[0] != threading.get_ident()


def test_editing_a_components_code_trains_the_nlu_again(tmp_path: Path) -> None:
    """The NLU part's fingerprint (``chatbot train`` reuses a part whose fingerprint an earlier
    model shares) holds the components' sources: the same code, the same fingerprint."""
    from training.reuse import part_fingerprints

    package = f"edited_{uuid.uuid4().hex[:8]}"
    files = {
        "domain.yml": DOMAIN,
        "data/nlu.yml": NLU,
        f"{package}/__init__.py": "",
        f"{package}/addon.py": SOURCE.read_text(),
        "config.yml": pipeline(package),
    }
    project = project_files(tmp_path, files)
    first = part_fingerprints(project, seed=42, augmentation=None)
    assert part_fingerprints(project, seed=42, augmentation=None) == first
    source = tmp_path / package / "addon.py"
    source.write_text(source.read_text() + "\n# tuned the lexicon\n")
    again = part_fingerprints(project, seed=42, augmentation=None)
    assert again["nlu"] != first["nlu"]
    assert again["core"] == first["core"]


def test_test_nlu_reports_a_custom_extractor(model: TrainedModel, tmp_path: Path) -> None:
    """``chatbot test nlu`` scores each extractor that names itself in the entities, a custom
    one too, as Rasa reports every extractor."""
    from chatbot.project.training_data import EntityAnnotation, NLUExample
    from training.nlu.evaluate import evaluate_nlu

    examples = [
        NLUExample("hello I love it", "greet", (EntityAnnotation(8, 12, "positive", "sentiment"),)),
        NLUExample("book a table", "book"),
        NLUExample("hello I hate it", "greet"),  # a negative the gold data does not mark
    ]
    summary: Any = evaluate_nlu(nlu_of(model), examples, tmp_path)
    scored = summary["entities"]["SentimentAnalyzer"]
    assert (scored["span_precision"], scored["span_recall"]) == (0.5, 1.0)
    errors = json.loads((tmp_path / "SentimentAnalyzer_errors.json").read_text())
    assert [e["text"] for e in errors] == ["hello I hate it"]
    assert summary["intent"]["accuracy"] == 1.0


def test_parse_data_a_component_broke_is_our_models_again(
    model: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="chatbot.nlu.custom"):
        parsed: Any = nlu_of(model).parse("hello broken")
    assert parsed["entities"] == []  # our model's, not the component's "not a list"
    assert "unserialisable" not in parsed  # a set is no JSON: left out
    assert parsed["keyword_intent"] == "greet"
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "left 'entities' unusable" in messages and "left 'unserialisable' unusable" in messages


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        (
            "    @staticmethod\n    def supported_languages():\n        return ['de', 'fr']\n",
            "does not support the language 'en' (config.yml's 'language'; it supports de, fr)",
        ),
        (
            "    @staticmethod\n    def not_supported_languages():\n        return ['en']\n",
            "does not support the language 'en'",
        ),
        (
            "    @staticmethod\n    def required_packages():\n        return ['no_such_package_x']\n",
            "needs the Python package 'no_such_package_x', which is not installed",
        ),
    ],
)
def test_a_component_that_does_not_fit_the_project_is_a_config_error(
    tmp_path: Path, methods: str, expected: str
) -> None:
    """Rasa's checks before training: the config's language, the packages a component needs."""
    module = (
        "from rasa.engine.graph import GraphComponent\n"
        "class C(GraphComponent):\n"
        "    def process(self, messages):\n        return messages\n" + methods
    )
    package = code_package(tmp_path, "unfit", {"c": module})
    files = {
        "domain.yml": DOMAIN,
        "data/nlu.yml": NLU,
        "config.yml": f"language: en\npipeline:\n  - name: DIETClassifier\n  - name: {package}.c.C\n",
    }
    from training.train import check_config

    with pytest.raises(ConfigError) as raised:
        check_config(project_files(tmp_path, files))
    assert str(raised.value).startswith(f"{tmp_path / 'config.yml'}:4: custom NLU component ")
    assert expected in str(raised.value)


def test_a_component_runs_before_our_model_until_a_classifier_or_extractor(
    project: tuple[Path, str],
) -> None:
    """Tokenizers and featurizers before a component leave it before our model; any classifier
    or extractor before it (DIET, RegexEntityExtractor, ...) puts it after."""
    from chatbot.project.config import ComponentConfig
    from chatbot.project.domain import Origin
    from training.nlu.custom import plan

    root, package = project

    def custom(name: str) -> ComponentConfig:
        return ComponentConfig(f"{package}.addon.{name}", {}, Origin(str(root / "config.yml"), 1))

    pipeline = [
        ComponentConfig("WhitespaceTokenizer"),
        custom("SpellFixer"),
        ComponentConfig("CountVectorsFeaturizer"),
        custom("KeywordCounter"),
        ComponentConfig("RegexEntityExtractor"),
        custom("SentimentAnalyzer"),
        ComponentConfig("DIETClassifier"),
    ]
    planned = plan(pipeline)
    assert [(c.class_name, c.before, c.index, c.trainable) for c in planned] == [
        ("SpellFixer", True, 1, False),
        ("KeywordCounter", True, 3, True),
        ("SentimentAnalyzer", False, 5, False),
    ]


def test_what_cannot_be_copied_does_not_stop_a_message(tmp_path: Path) -> None:
    """A component that keeps something uncopyable in the message (a lock, a loaded model), then
    one that fails: the message still goes on, without the failing one's changes."""
    from chatbot.nlu.custom import CustomComponent, CustomComponents

    class Keeps:
        def process(self, messages: list[Any]) -> list[Any]:
            messages[0].set("handle", threading.Lock())  # not parse data: no add_to_output
            return messages

    class Fails:
        def process(self, messages: list[Any]) -> list[Any]:
            messages[0].set("partial", 1, add_to_output=True)
            raise ValueError("no")

    components = [
        CustomComponent("x.Keeps", {}, True, 0, instance=Keeps()),
        CustomComponent("x.Fails", {}, True, 1, instance=Fails()),
    ]
    custom = CustomComponents(components, {}, None, tmp_path / "storage")

    def ours(text: str) -> Any:
        return {"text": text, "intent": {"name": "greet", "confidence": 1.0}, "entities": []}

    parsed: Any = custom.parse("hello", ours)
    assert parsed == {
        "text": "hello",
        "intent": {"name": "greet", "confidence": 1.0},
        "entities": [],
    }
