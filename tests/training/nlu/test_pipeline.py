from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.errors import ConfigError
from chatbot.project.config import ComponentConfig
from chatbot.project.domain import Origin
from training.nlu import pipeline as pipeline_module
from training.nlu.pipeline import COMPONENTS, settings_from_pipeline

RASA_DEFAULT = [
    ComponentConfig("WhitespaceTokenizer"),
    ComponentConfig("RegexFeaturizer"),
    ComponentConfig("LexicalSyntacticFeaturizer"),
    ComponentConfig("CountVectorsFeaturizer"),
    ComponentConfig(
        "CountVectorsFeaturizer", {"analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4}
    ),
    ComponentConfig("DIETClassifier", {"epochs": 100, "constrain_similarities": True}),
    ComponentConfig("EntitySynonymMapper"),
    ComponentConfig("ResponseSelector", {"epochs": 100}),
    ComponentConfig("FallbackClassifier", {"threshold": 0.3, "ambiguity_threshold": 0.1}),
]


@pytest.fixture(autouse=True)
def _fresh_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "_noticed", set())


def test_empty_pipeline_gets_rasas_defaults() -> None:
    settings = settings_from_pipeline([])
    assert settings.fallback_threshold == 0.3
    assert settings.ambiguity_threshold == 0.1
    assert settings.lexical_features and settings.pattern_features and settings.synonyms
    assert settings.count_vectors == (("word", 1, 1), ("char_wb", 1, 4))


def test_rasas_default_config_configures_the_model() -> None:
    settings = settings_from_pipeline(RASA_DEFAULT)
    # DIET's epochs are the most: its passes are of larger batches than ours.
    assert (settings.epochs, settings.max_epochs) == (0, 100)
    assert settings.entity_recognition and settings.synonyms
    assert settings.lexical_features and settings.pattern_features
    assert settings.count_vectors == (("word", 1, 1), ("char_wb", 1, 4))
    assert (settings.fallback_threshold, settings.ambiguity_threshold) == (0.3, 0.1)


def test_a_written_pipeline_gets_only_what_it_names() -> None:
    settings = settings_from_pipeline(
        [ComponentConfig("WhitespaceTokenizer"), ComponentConfig("BiLSTMCRF")]
    )
    assert settings.fallback_threshold == 0.0
    assert not settings.lexical_features and not settings.pattern_features
    assert settings.count_vectors == ()
    assert not settings.synonyms and not settings.regex_entities
    assert settings.entity_recognition


def test_our_component_takes_every_setting() -> None:
    settings = settings_from_pipeline(
        [ComponentConfig("BiLSTMCRF", {"hidden": 32, "epochs": 3, "dropout": 0.1})]
    )
    assert (settings.hidden, settings.epochs, settings.dropout) == (32, 3, 0.1)


def test_diets_epochs_are_the_most_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="training.nlu.pipeline"):
        settings = settings_from_pipeline([ComponentConfig("DIETClassifier", {"epochs": 7})])
    assert (settings.epochs, settings.max_epochs) == (0, 7)
    assert any(
        r.getMessage().startswith("DIETClassifier.epochs: epochs 7 is the most")
        for r in caplog.records
    )


def test_fallback_classifier_defaults_to_rasas_thresholds() -> None:
    settings = settings_from_pipeline([ComponentConfig("FallbackClassifier")])
    assert (settings.fallback_threshold, settings.ambiguity_threshold) == (0.3, 0.1)


def test_accepted_names_log_one_notice_each(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = [ComponentConfig("SpacyNLP"), ComponentConfig("SpacyTokenizer")] * 2
    with caplog.at_level(logging.INFO, logger="training.nlu.pipeline"):
        settings_from_pipeline(pipeline)
        settings_from_pipeline(pipeline)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("SpacyNLP: ")
    assert messages[1].startswith("SpacyTokenizer: ")


def test_an_accepted_names_settings_are_named_as_not_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokenizer = ComponentConfig(
        "WhitespaceTokenizer", {"intent_tokenization_flag": True, "intent_split_symbol": "+"}
    )
    with caplog.at_level(logging.INFO, logger="training.nlu.pipeline"):
        settings_from_pipeline([tokenizer])
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.endswith(
        "its settings intent_split_symbol, intent_tokenization_flag are not used"
    )


def test_unknown_component_names_it_and_lists_the_known_ones() -> None:
    component = ComponentConfig("FancyClassifier", origin=Origin("config.yml", 7))
    with pytest.raises(ConfigError) as error:
        settings_from_pipeline([ComponentConfig("WhitespaceTokenizer"), component])
    message = str(error.value)
    assert message.startswith("config.yml:7: unknown NLU component 'FancyClassifier'")
    for known in ("DIETClassifier", "FallbackClassifier", "BiLSTMCRF", "RegexEntityExtractor"):
        assert known in message


@pytest.mark.parametrize(
    ("component", "match"),
    [
        (ComponentConfig("BiLSTMCRF", {"hiden": 3}), "unknown setting 'hiden'.*known settings"),
        (ComponentConfig("BiLSTMCRF", {"epochs": "many"}), "'epochs' must be int"),
        (ComponentConfig("FallbackClassifier", {"threshold": "high"}), "must be float"),
        (ComponentConfig("CountVectorsFeaturizer", {"analyzer": "bytes"}), "analyzer 'bytes'"),
        (ComponentConfig("CountVectorsFeaturizer", {"min_ngram": 3, "max_ngram": 2}), "min_ngram"),
        # Out of range, named as the user wrote it (DIET's drop_rate is our dropout).
        (ComponentConfig("DIETClassifier", {"drop_rate": 1.5}), "'drop_rate' must be at least 0"),
        (ComponentConfig("DIETClassifier", {"epochs": -5}), "DIETClassifier: 'epochs' must be at"),
        (ComponentConfig("DIETClassifier", {"epochs": 0}), "DIETClassifier: 'epochs' must be at"),
        (ComponentConfig("FallbackClassifier", {"threshold": 30}), "'threshold' must be between"),
        (ComponentConfig("BiLSTMCRF", {"learning_rate": 0}), "'learning_rate' must be above 0"),
    ],
)
def test_bad_settings_are_config_errors(component: ComponentConfig, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        settings_from_pipeline([component])


def test_the_registry_is_an_explicit_table() -> None:
    for name in (
        "WhitespaceTokenizer",
        "RegexFeaturizer",
        "LexicalSyntacticFeaturizer",
        "CountVectorsFeaturizer",
        "DIETClassifier",
        "EntitySynonymMapper",
        "FallbackClassifier",
        "ResponseSelector",
    ):
        assert name in COMPONENTS


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("DucklingHTTPExtractor", "renamed DucklingEntityExtractor in Rasa 2.0"),
        ("EmbeddingIntentClassifier", "removed in Rasa 2.0; DIETClassifier took its place"),
    ],
)
def test_a_component_rasa_removed_names_what_took_its_place(name: str, replacement: str) -> None:
    component = ComponentConfig(name, origin=Origin("config.yml", 3))
    with pytest.raises(ConfigError) as error:
        settings_from_pipeline([component])
    assert str(error.value) == f"config.yml:3: unknown NLU component '{name}'; {replacement}"


def test_a_policy_rasa_removed_names_what_took_its_place() -> None:
    from training.dialogue import policy_configs

    policy = ComponentConfig("SklearnPolicy", origin=Origin("config.yml", 9))
    with pytest.raises(ConfigError, match=r"removed in Rasa 3\.0; TEDPolicy took its place"):
        policy_configs([policy])


def test_a_custom_class_path_is_imported_and_a_missing_one_named() -> None:
    """A module path is a project's custom component (tests/chatbot/nlu/test_custom_components.py
    runs them); one that is not there is an error naming config.yml's line and where it looked,
    a custom policy's too (tests/chatbot/dialogue/test_custom_policy.py)."""
    from training.dialogue import check_policy_params, policy_configs

    component = ComponentConfig(
        "rasa_nlu_examples.classifiers.SparseNaiveBayesIntentClassifier",
        origin=Origin("config.yml", 6),
    )
    with pytest.raises(ConfigError) as error:
        settings_from_pipeline([component])
    assert str(error.value) == (
        "config.yml:6: custom NLU component "
        "'rasa_nlu_examples.classifiers.SparseNaiveBayesIntentClassifier': no module "
        f"'rasa_nlu_examples' (looked in {Path.cwd()})"
    )
    policy = ComponentConfig("policies.MyPolicy", origin=Origin("config.yml", 12))
    ((kind, _),) = policy_configs([policy])
    assert kind == "custom"
    with pytest.raises(ConfigError, match=r"^config.yml:12: custom policy 'policies.MyPolicy': no"):
        check_policy_params(kind, policy)


def test_regex_entity_extractors_options_are_its_own_not_the_featurizers() -> None:
    """Rasa's RegexEntityExtractor has its own use_lookup_tables, use_regexes,
    use_word_boundaries and case_sensitive; the RegexFeaturizer's stay as that one says."""
    settings = settings_from_pipeline(
        [
            ComponentConfig("RegexFeaturizer", {"case_sensitive": True}),
            ComponentConfig(
                "RegexEntityExtractor",
                {
                    "use_lookup_tables": False,
                    "use_regexes": True,
                    "use_word_boundaries": False,
                    "case_sensitive": False,
                },
            ),
        ]
    )
    assert settings.regex_entities
    assert not settings.regex_entities_use_lookup_tables
    assert settings.regex_entities_use_regexes
    assert not settings.regex_entities_use_word_boundaries
    assert not settings.regex_entities_case_sensitive
    # The features: the RegexFeaturizer's options, untouched by the extractor's.
    assert settings.case_sensitive and settings.use_lookup_tables and settings.use_regexes


def test_regex_entity_extractor_defaults_are_rasas() -> None:
    settings = settings_from_pipeline([ComponentConfig("RegexEntityExtractor")])
    assert settings.regex_entities
    assert settings.regex_entities_use_lookup_tables and settings.regex_entities_use_regexes
    assert settings.regex_entities_use_word_boundaries
    assert not settings.regex_entities_case_sensitive


@pytest.mark.parametrize(
    ("component", "notice"),
    [
        (
            ComponentConfig("RegexEntityExtractor", {"use_lookup_tables": True}),
            None,  # its own option: nothing to note
        ),
        (
            ComponentConfig("RegexEntityExtractor", {"use_regexes": True, "extra": 1}),
            "RegexEntityExtractor.params: settings extra have no counterpart in our "
            "RegexEntityExtractor and are ignored",
        ),
        (
            ComponentConfig("RegexFeaturizer", {"number_additional_patterns": 10}),
            "RegexFeaturizer.params: settings number_additional_patterns have no counterpart in "
            "our RegexFeaturizer and are ignored",
        ),
        (
            ComponentConfig("DIETClassifier", {"transformer_size": 256}),
            "DIETClassifier.params: settings transformer_size have no counterpart in the "
            "BiLSTM-CRF model and are ignored",
        ),
        (
            ComponentConfig("CRFEntityExtractor", {"BILOU_flag": True, "max_iterations": 50}),
            "CRFEntityExtractor.params: settings max_iterations have no counterpart in the "
            "BiLSTM-CRF model and are ignored",
        ),
    ],
)
def test_ignored_settings_are_noted_naming_what_stands_in_for_the_component(
    component: ComponentConfig, notice: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="training.nlu.pipeline"):
        settings_from_pipeline([component])
    noted = [r.getMessage() for r in caplog.records if ".params: " in r.getMessage()]
    assert noted == ([notice] if notice else [])


def test_a_bad_regex_entity_extractor_option_is_named_as_written() -> None:
    component = ComponentConfig(
        "RegexEntityExtractor", {"use_lookup_tables": "yes"}, Origin("config.yml", 5)
    )
    with pytest.raises(ConfigError) as error:
        settings_from_pipeline([component])
    assert str(error.value) == (
        "config.yml:5: RegexEntityExtractor: 'use_lookup_tables' must be bool, got 'yes'"
    )


def test_patterns_the_featurizer_leaves_out_are_warned_of_for_the_extractor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The model file keeps the patterns the RegexFeaturizer asks for; an extractor that wants
    others (Rasa's would read them from the data) is told it finds none."""
    pipeline = [
        ComponentConfig("RegexFeaturizer", {"use_lookup_tables": False}),
        ComponentConfig("RegexEntityExtractor", origin=Origin("config.yml", 8)),
    ]
    with caplog.at_level(logging.WARNING, logger="training.nlu.pipeline"):
        settings_from_pipeline(pipeline)
        settings_from_pipeline(
            [pipeline[0], ComponentConfig("RegexEntityExtractor", {"use_lookup_tables": False})]
        )
    assert [r.getMessage() for r in caplog.records] == [
        "config.yml:8: RegexEntityExtractor finds no entities in lookup tables: RegexFeaturizer's "
        "use_lookup_tables: false leaves them out of the model (Rasa's extractor would still use "
        "them)"
    ]


@pytest.mark.parametrize("name", ["DIETClassifier", "CRFEntityExtractor"])
@pytest.mark.parametrize(("flag", "scheme"), [(True, "bilou"), (False, "io"), (None, "bilou")])
def test_rasas_bilou_flag_sets_the_tag_scheme(name: str, flag: bool | None, scheme: str) -> None:
    params = {} if flag is None else {"BILOU_flag": flag}
    assert settings_from_pipeline([ComponentConfig(name, params)]).tag_scheme == scheme


def test_a_bilou_flag_that_is_no_bool_is_named_with_its_line() -> None:
    component = ComponentConfig("DIETClassifier", {"BILOU_flag": "no"}, Origin("config.yml", 7))
    with pytest.raises(ConfigError) as error:
        settings_from_pipeline([component])
    assert str(error.value) == "config.yml:7: DIETClassifier: 'BILOU_flag' must be bool, got 'no'"


def test_an_unknown_tag_scheme_is_named_with_its_choices() -> None:
    component = ComponentConfig("BiLSTMCRF", {"tag_scheme": "bioes"}, Origin("config.yml", 4))
    with pytest.raises(ConfigError) as error:
        settings_from_pipeline([component])
    assert str(error.value) == (
        "config.yml:4: BiLSTMCRF: 'tag_scheme' must be one of bilou, bio, io, got 'bioes'"
    )
