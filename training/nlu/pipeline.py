"""From a config's ``pipeline:`` to the settings of our one NLU model.

Rasa splits NLU into a chain of components; we train one joint BiLSTM-CRF model. Each Rasa name is
either translated into settings (``CountVectorsFeaturizer`` -> n-gram features,
``FallbackClassifier`` -> thresholds) or accepted with a one-line notice saying what stands in for
it. A module path (``addons.sentiment.Analyzer``) is a project's custom component, imported and
checked here and run beside our model (``training.nlu.custom``). An unknown name is a
``ConfigError`` that lists the known ones.

An empty pipeline (a config without ``pipeline:``) gets Rasa's default: every feature, synonyms, and
a fallback at 0.3 with an ambiguity threshold of 0.1. A written pipeline gets what it names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from chatbot.errors import ConfigError
from chatbot.nlu.custom import component_class, is_custom_name
from chatbot.nlu.duckling import DucklingConfig
from chatbot.nlu.settings import NLUSettings
from chatbot.project.config import ComponentConfig
from training.nlu.custom import folders_of
from training.removed_names import REMOVED_COMPONENTS, unknown_name_hint

logger = logging.getLogger(__name__)

DEFAULT_FALLBACK_THRESHOLD = 0.3
DEFAULT_AMBIGUITY_THRESHOLD = 0.1
# A written pipeline starts from this and switches on what its components name.
_BARE = {
    "lexical_features": False,
    "pattern_features": False,
    "count_vectors": (),
    "entity_recognition": False,
    "synonyms": False,
}

_BILSTM_CRF = "the BiLSTM-CRF model"  # what stands in for DIET and the other entity taggers

Handler = Callable[[NLUSettings, ComponentConfig], NLUSettings]
_noticed: set[str] = set()


def _notice(component: str, message: str) -> None:
    """Log a component's notice at INFO, once per process."""
    if component not in _noticed:
        _noticed.add(component)
        logger.info("%s: %s", component, message)


def _where(component: ComponentConfig) -> str:
    return component.origin.prefix


def _take(
    component: ComponentConfig,
    mapping: dict[str, str],
    settings: NLUSettings,
    counterpart: str = "",
) -> NLUSettings:
    """Copy the params named in ``mapping`` (Rasa name -> our field); note the others, naming
    ``counterpart``, what stands in for the component (by default our own of its name)."""
    values: dict[str, Any] = {}
    ignored = []
    for key, value in component.params.items():
        if key in mapping:
            values[mapping[key]] = value
        else:
            ignored.append(key)
    if ignored:
        _notice(
            f"{component.name}.params",
            f"settings {', '.join(sorted(ignored))} have no counterpart in "
            f"{counterpart or 'our ' + component.name} and are ignored",
        )
    try:
        return settings.replace(
            values,
            component=component.name,
            names={ours: theirs for theirs, ours in mapping.items()},
        )
    except ConfigError as error:
        raise ConfigError(f"{_where(component)}{error}") from None


def _ours(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    try:
        return settings.replace({"entity_recognition": True, **c.params}, component=c.name)
    except ConfigError as error:
        raise ConfigError(f"{_where(c)}{error}") from None


def _bilou_flag(settings: NLUSettings, c: ComponentConfig) -> tuple[NLUSettings, ComponentConfig]:
    """Rasa's ``BILOU_flag`` (DIETClassifier, CRFEntityExtractor): true (Rasa's default) tags
    entities in BILOU, false with bare entity names, our ``tag_scheme: io``. The component comes
    back without it."""
    if "BILOU_flag" not in c.params:
        return settings, c
    params = dict(c.params)
    flag = params.pop("BILOU_flag")
    if not isinstance(flag, bool):
        raise ConfigError(f"{_where(c)}{c.name}: 'BILOU_flag' must be bool, got {flag!r}")
    settings = settings.replace({"tag_scheme": "bilou" if flag else "io"}, component=c.name)
    return settings, ComponentConfig(c.name, params, c.origin)


def _crf_extractor(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    settings, c = _bilou_flag(settings, c)
    return _switch("entity_recognition", _CLASSIFIER, _BILSTM_CRF)(settings, c)


def _diet(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    settings, c = _bilou_flag(settings, c)
    params = dict(c.params)
    if isinstance(params.get("batch_size"), list):  # DIET grows the batch: [64, 256]
        params["batch_size"] = int(params["batch_size"][0])
    _notice(c.name, "trained as the BiLSTM-CRF joint intent and entity model")
    if "epochs" in params:
        # DIET's epochs are passes at DIET's batches (64 growing to 256); ours are 16 or 64, so
        # the same count is 4-16 times DIET's steps. Its epochs are the most we train: the
        # schedule's own count (about three steps an example, at least 30 epochs) is what the
        # benchmarks measured; `chatbot init`'s 100 as a count trained a 1,700-example bot 3.3
        # times as long, and on bot-sized data no better overall (docs/benchmarks.md,
        # "DIETClassifier's epochs"). BiLSTMCRF's epochs is exact.
        _notice(
            f"{c.name}.epochs",
            f"epochs {params['epochs']!r} is the most the BiLSTM-CRF trains; it stops sooner "
            "where its schedule (about three optimiser steps an example, at least 30 epochs) "
            "ends; BiLSTMCRF's epochs sets an exact count",
        )
    settings = settings.replace({"entity_recognition": True}, component=c.name)
    mapping = {
        "epochs": "max_epochs",
        "learning_rate": "learning_rate",
        "batch_size": "batch_size",
        "entity_recognition": "entity_recognition",
        "ranking_length": "ranking_length",
        "drop_rate": "dropout",
        "checkpoint_model": "checkpoint_model",
        "evaluate_on_number_of_examples": "evaluate_on_number_of_examples",
        "evaluate_every_number_of_epochs": "evaluate_every_number_of_epochs",
    }
    return _take(ComponentConfig(c.name, params, c.origin), mapping, settings, _BILSTM_CRF)


def _regex_featurizer(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    settings = settings.replace({"pattern_features": True}, component=c.name)
    mapping = {k: k for k in ("case_sensitive", "use_regexes", "use_lookup_tables")}
    return _take(c, mapping, settings)


def _regex_extractor(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    """Rasa's RegexEntityExtractor options are its own, apart from the RegexFeaturizer's."""
    settings = settings.replace({"regex_entities": True}, component=c.name)
    mapping = {
        k: f"regex_entities_{k}"
        for k in ("case_sensitive", "use_regexes", "use_lookup_tables", "use_word_boundaries")
    }
    return _take(c, mapping, settings)


def _lexical(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    if c.params:
        _notice(c.name, "uses a fixed feature set (case, digits, punctuation, position)")
    return settings.replace({"lexical_features": True}, component=c.name)


def _count_vectors(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    analyzer = str(c.params.get("analyzer", "word"))
    if analyzer not in ("word", "char", "char_wb"):
        raise ConfigError(
            f"{_where(c)}{c.name}: analyzer '{analyzer}' is not one of word, char, char_wb"
        )
    low, high = c.params.get("min_ngram", 1), c.params.get("max_ngram", 1)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise ConfigError(
            f"{_where(c)}{c.name}: need 1 <= min_ngram <= max_ngram, got {low}, {high}"
        )
    extra = {"analyzer", "min_ngram", "max_ngram"}
    if set(c.params) - extra:
        _notice(c.name, "only analyzer, min_ngram and max_ngram apply; other settings are ignored")
    # "char" n-grams may span words; we take them within words, as char_wb does.
    entry = ("word" if analyzer == "word" else "char_wb", low, high)
    return settings.replace({"count_vectors": [*settings.count_vectors, entry]}, component=c.name)


def _fallback(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    params = {
        "threshold": DEFAULT_FALLBACK_THRESHOLD,
        "ambiguity_threshold": DEFAULT_AMBIGUITY_THRESHOLD,
        **c.params,
    }
    mapping = {"threshold": "fallback_threshold", "ambiguity_threshold": "ambiguity_threshold"}
    return _take(ComponentConfig(c.name, params, c.origin), mapping, settings)


def _switch(field: str, notice: str = "", counterpart: str = "") -> Handler:
    def handler(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
        if notice:
            _notice(c.name, notice)
        settings = settings.replace({field: True}, component=c.name)
        return _take(c, {}, settings, counterpart)

    return handler


def _accepted(notice: str) -> Handler:
    def handler(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
        unused = sorted(k for k in c.params if k != "name")
        _notice(
            c.name, notice + (f"; its settings {', '.join(unused)} are not used" if unused else "")
        )
        return settings

    return handler


def _duckling(settings: NLUSettings, c: ComponentConfig) -> NLUSettings:
    """Not part of the network: its settings are checked here and kept beside it in the model
    file (``chatbot.nlu.duckling``), and the server is asked at parse time."""
    DucklingConfig.from_params(c.params, _where(c))
    return settings


_TOKENIZER = "tokenized by our Unicode-aware tokenizer (words, punctuation, CJK characters)"
_DENSE = "pretrained embeddings are not used; the BiLSTM learns word and character features"
_CLASSIFIER = "served by the BiLSTM-CRF joint model"

COMPONENTS: dict[str, Handler] = {
    "BiLSTMCRF": _ours,
    "DIETClassifier": _diet,
    "WhitespaceTokenizer": _accepted(_TOKENIZER),
    "SpacyTokenizer": _accepted(_TOKENIZER),
    "MitieTokenizer": _accepted(_TOKENIZER),
    "JiebaTokenizer": _accepted(_TOKENIZER),
    "LanguageModelTokenizer": _accepted(_TOKENIZER),
    "ConveRTTokenizer": _accepted(_TOKENIZER),
    "SpacyNLP": _accepted(_DENSE),
    "MitieNLP": _accepted(_DENSE),
    "HFTransformersNLP": _accepted(_DENSE),
    "SpacyFeaturizer": _accepted(_DENSE),
    "MitieFeaturizer": _accepted(_DENSE),
    "ConveRTFeaturizer": _accepted(_DENSE),
    "LanguageModelFeaturizer": _accepted(_DENSE),
    "RegexFeaturizer": _regex_featurizer,
    "LexicalSyntacticFeaturizer": _lexical,
    "CountVectorsFeaturizer": _count_vectors,
    "SklearnIntentClassifier": _accepted(_CLASSIFIER),
    "LogisticRegressionClassifier": _accepted(_CLASSIFIER),
    "KeywordIntentClassifier": _accepted(_CLASSIFIER),
    "MitieIntentClassifier": _accepted(_CLASSIFIER),
    "CRFEntityExtractor": _crf_extractor,
    "SpacyEntityExtractor": _switch("entity_recognition", _CLASSIFIER, _BILSTM_CRF),
    "MitieEntityExtractor": _switch("entity_recognition", _CLASSIFIER, _BILSTM_CRF),
    "DucklingEntityExtractor": _duckling,
    "RegexEntityExtractor": _regex_extractor,
    "EntitySynonymMapper": _switch("synonyms"),
    "FallbackClassifier": _fallback,
    "ResponseSelector": _accepted(
        "retrieval intents (such as faq/ask_name) are selected by a head of the joint model"
    ),
}


def settings_from_pipeline(pipeline: Sequence[ComponentConfig]) -> NLUSettings:
    """The model settings a pipeline asks for; ``ConfigError`` for a name we do not know."""
    if not pipeline:
        return NLUSettings(
            fallback_threshold=DEFAULT_FALLBACK_THRESHOLD,
            ambiguity_threshold=DEFAULT_AMBIGUITY_THRESHOLD,
        )
    settings = NLUSettings().replace(_BARE)
    for component in pipeline:
        if is_custom_name(component.name):  # a project's own component, run beside our model
            component_class(component.name, _where(component), folders_of(component))
            continue
        handler = COMPONENTS.get(component.name)
        if handler is None:
            hint = unknown_name_hint(
                component.name, REMOVED_COMPONENTS, list(COMPONENTS), "NLU component", "components"
            )
            raise ConfigError(
                f"{_where(component)}unknown NLU component '{component.name}'; {hint}"
            )
        settings = handler(settings, component)
    _warn_of_unkept_patterns(settings, pipeline)
    return settings


def _warn_of_unkept_patterns(settings: NLUSettings, pipeline: Sequence[ComponentConfig]) -> None:
    """Rasa's RegexEntityExtractor reads the training data's patterns whatever the
    RegexFeaturizer's options; ours finds those the model file keeps, which the RegexFeaturizer's
    ``use_regexes`` and ``use_lookup_tables`` choose. Where that loses some, say so."""
    if not settings.regex_entities:
        return
    for option, kind in (("use_regexes", "regexes"), ("use_lookup_tables", "lookup tables")):
        if getattr(settings, f"regex_entities_{option}") and not getattr(settings, option):
            where = next((_where(c) for c in pipeline if c.name == "RegexEntityExtractor"), "")
            logger.warning(
                "%sRegexEntityExtractor finds no entities in %s: RegexFeaturizer's %s: false "
                "leaves them out of the model (Rasa's extractor would still use them)",
                where,
                kind,
                option,
            )
