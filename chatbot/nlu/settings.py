"""The NLU model's settings: one frozen dataclass, saved in the model file and read back from it.

``training.nlu.pipeline`` builds it from a config's ``pipeline:``; every field here can also be
set directly as a parameter of the ``BiLSTMCRF`` component. ``NetSizes``, the vocabulary and
label-set sizes that training finds, is saved beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from chatbot.errors import ConfigError
from chatbot.nlu.tags import SCHEMES
from chatbot.ranges import ABOVE_0, AT_LEAST_0, AT_LEAST_1, FRACTION, SHARE, Range, out_of_range

CountVectors = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class NLUSettings:
    # Token features.
    word_dim: int = 100
    char_dim: int = 32
    char_filters: int = 64
    max_word_chars: int = 20  # longer tokens keep their first and last characters
    lexical_features: bool = True  # LexicalSyntacticFeaturizer: case, digits, punctuation, position
    pattern_features: bool = True  # RegexFeaturizer: a feature per regex and lookup table
    # Words looked up with every digit written 0 (Lample et al. 2016): numbers of the same shape
    # share one word vector, so an unseen flight number is a known word (the characters keep
    # their digits). An option, off: chosen for ATIS on its validation data.
    zero_digits: bool = False
    # RegexFeaturizer's options: which patterns the model file keeps, and how the features match.
    use_regexes: bool = True
    use_lookup_tables: bool = True
    case_sensitive: bool = False
    # Sentence features for the intent head: (analyzer, min_n, max_n), analyzer "word" or "char_wb".
    count_vectors: CountVectors = (("word", 1, 1), ("char_wb", 1, 4))
    count_vectors_max_features: int = 20000
    count_vectors_dim: int = 64
    # Share of a linear model of the n-grams in the intent probabilities (the rest is the BiLSTM
    # head's). Each is trained on its own loss. 0: no n-gram model. Negative: chosen from the data
    # when training (``training.nlu.trainer.for_data``; the model file holds the chosen share):
    # below 20 training examples per intent, where the BiLSTM head is the weaker one, 0.9 with
    # the TF-IDF n-gram model (0.5 with the summed one), else 0.25.
    ngram_intent_weight: float = -1.0
    # What the n-gram model is. "tfidf": a logistic regression over the message's n-grams
    # weighted by inverse document frequency and scaled to unit length (scikit-learn's
    # TfidfVectorizer), each intent's examples weighted by the inverse of their number
    # (class_weight="balanced"), with an L2 penalty of ``ngram_l2`` on the weights, fitted to
    # convergence (L-BFGS) after the network. A frequent intent then no longer wins every message
    # it shares a few words with, and a rare word that marks one intent counts for more than the
    # common ones. "sum": one weight row per n-gram present, summed, trained with the network's
    # loss. "auto" (chosen from the data when training; the model file holds the choice): "tfidf"
    # below 20 training examples per intent, else "sum". Cross-validated on the Braun corpora's
    # training splits, "tfidf" raised WebApps from .77-.79 to .83 and AskUbuntu from .90-.92 to
    # .93; on ATIS and HWU64 validation it was weaker than "sum", alone and mixed in
    # (docs/benchmarks.md, NLU, "A TF-IDF n-gram model for small data").
    ngram_model: str = "auto"
    # The TF-IDF model's penalty (on the mean loss). Cross-validated accuracy is flat from 1e-4 to
    # 1e-2; the penalty sets how sure the model is. At 1e-4 a small bot's confidence on its own
    # examples stays near the summed model's (the moodbot's median .94, against .99; .71 at 1e-3),
    # so a fallback threshold set for that still holds, while messages from outside the bot's
    # domain get less (.30-.34, against .36-.59).
    ngram_l2: float = 1e-4
    # Encoder and heads.
    hidden: int = 128  # per direction
    lstm_layers: int = 1
    attention_dim: int = 64
    # Self-attention over the BiLSTM's states (as Stack-Propagation's encoder, Qin et al. 2019):
    # each token also reads a learned mix of every token's state, of this many dimensions,
    # concatenated to its own state for all heads. 0: off.
    self_attention: int = 0
    dropout: float = 0.25
    word_dropout: float = 0.1  # share of training tokens blanked (unknown word, no characters)
    max_tokens: int = 512  # a longer message is cut after this many tokens
    entity_recognition: bool = True
    # The entity tags the CRF learns (``chatbot.nlu.tags``): "bilou" (Begin, Inside, Last, Unit;
    # Rasa's default ``BILOU_flag: true``), "bio" (Begin, Inside), "io" (Inside only: Rasa's
    # ``BILOU_flag: false``; two entities of one type side by side read as one).
    tag_scheme: str = "bilou"
    # The tagger also reads the intent head's distribution (Stack-Propagation, Qin et al. 2019):
    # a linear map of softmax(intent logits) adds to every token's tag scores, and the tagger's
    # loss trains the intent head through it. Off: no gain on ATIS/SNIPS validation. Chosen by
    # HWU64's validation data, where 10-fold entity F1 rose 0.7 with both seeds tried
    # (docs/benchmarks.md, NLU, "The intent fed to the tagger" and the HWU64 section).
    intent_to_tagger: bool = False
    # Token-level intent detection (Stack-Propagation, Qin et al. 2019): every token also predicts
    # the message's intent (a linear map of its state, trained on every token), and the mean of
    # the tokens' intent log-probabilities adds to the intent head's logits. With
    # ``intent_to_tagger`` each token's tags read its own intent distribution, not the message's.
    # Off: on ATIS validation slot F1 +0.37 (four seeds), but on ATIS test (six seeds) level on
    # slot F1 and -0.33 intent accuracy; on SNIPS validation intent accuracy -0.14 to -0.43
    # (docs/benchmarks.md, NLU, "Token-level intent detection").
    token_intent: bool = False
    # False: the tokens' intents are trained (a second task for the encoder) and, with
    # ``intent_to_tagger``, read by the tagger, but cast no vote on the message's intent.
    token_intent_vote: bool = True
    # Training.
    epochs: int = 0  # 0: chosen from the data size, for 3 optimiser steps an example, clamped
    min_steps: int = 300  # to [min_steps, target_steps] and then to [min_epochs, max_epochs]
    # (max_epochs binding where the two cross; DIETClassifier's epochs are max_epochs)
    target_steps: int = 3000
    # At least 30 epochs: binds only above about 6,400 examples (and 1,600-2,000 at batch 16),
    # where the step cap stopped SNIPS, CLINC150 and HWU64 at 13-22 epochs; on their validation
    # data 30 gave SNIPS slot F1 +0.5 and HWU64 entity F1 +0.5 (two seeds each), CLINC150
    # in-scope accuracy +0.5 (one seed), at 1.4-2x the training time (docs/benchmarks.md, NLU,
    # "Longer training on the large sets").
    min_epochs: int = 30
    max_epochs: int = 100
    batch_size: int = 0  # 0: 16 for small data sets, 64 from 2,000 examples
    learning_rate: float = 0.003
    weight_decay: float = 0.0
    # Of the intent heads' targets in training. Off: 0.1 looked better on validation (CLINC150
    # out-of-scope recall with a threshold +8), but on test it cost ATIS and SNIPS 0.3 slot F1,
    # and it lowers every confidence, so a fallback threshold set for unsmoothed confidences
    # falls back more often (docs/benchmarks.md, NLU, "Label smoothing").
    label_smoothing: float = 0.0
    # The weight of an auxiliary language-model loss in training (Rei 2017, "Semi-supervised
    # multitask learning for sequence labeling"): the forward LSTM's state at each token predicts
    # the next word, the backward one's the previous word, through a small layer the trainer
    # keeps and the model file does not. It teaches the encoder more about its words from the
    # same sentences, without more data. 0: off.
    language_model: float = 0.0
    # Exponential moving average of the weights over the optimiser steps (Polyak averaging): the
    # model keeps the average, not the last step's weights. 0: off; else the decay per step.
    # Off: 0.999 helped only SNIPS on validation, and not on its test split (docs/benchmarks.md,
    # NLU, "An average of the weights").
    ema_decay: float = 0.0
    # Rasa DIET's model checkpointing: score the model on held-out examples every so many epochs
    # (intent accuracy plus entity F1) and keep the best-scoring weights, not the last ones. The
    # held-out examples are ``evaluate_on_number_of_examples`` of the training data (not trained
    # on), or a validation set given to ``train_nlu``; without either nothing is held out.
    checkpoint_model: bool = False
    evaluate_on_number_of_examples: int = 0
    evaluate_every_number_of_epochs: int = 1
    # An ensemble of this many networks, trained one after the other on the same data with seeds
    # seed, seed + 1, ... (their own initial weights, batch order and dropout). A message's
    # intent, role, group and response probabilities are the members' mean, and the entity tags
    # are decoded from the members' mean CRF scores (emissions and transitions). Costs this many
    # times the training and the parse time. 1: one network.
    ensemble_size: int = 1
    # How an ensemble's entity tags are decoded: "scores", Viterbi over the members' mean CRF
    # scores; "marginals", each member's CRF gives its tag marginals, and the tags are the path
    # of the highest mean marginals the tag scheme allows (posterior decoding).
    ensemble_tags: str = "scores"
    # Post-processing.
    synonyms: bool = True  # EntitySynonymMapper
    regex_entities: bool = False  # RegexEntityExtractor
    # RegexEntityExtractor's own options, with Rasa's names and defaults after the prefix: entities
    # from regexes, from lookup tables, lookup elements only as whole words (False: anywhere,
    # inside words too), case. Independent of the RegexFeaturizer's options above, as in Rasa,
    # except that it finds only the patterns those keep in the model file.
    regex_entities_use_regexes: bool = True
    regex_entities_use_lookup_tables: bool = True
    regex_entities_use_word_boundaries: bool = True
    regex_entities_case_sensitive: bool = False
    fallback_threshold: float = 0.0  # FallbackClassifier threshold; 0 turns fallback off
    ambiguity_threshold: float = 0.0
    ranking_length: int = 10

    def __post_init__(self) -> None:
        # Direct construction (``dataclasses.replace`` included) is checked too; ``replace``
        # checks first, with the names the user wrote.
        _check_ranges(asdict(self), "BiLSTMCRF", {})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["count_vectors"] = [list(cv) for cv in self.count_vectors]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NLUSettings:
        """Settings from a model file; a setting the file lacks (the file is older than the
        setting) takes its ``ABSENT_FROM_MODEL_FILE`` value, not today's default."""
        return cls.from_params({**ABSENT_FROM_MODEL_FILE, **data}, component="model file")

    @classmethod
    def from_params(cls, params: dict[str, Any], *, component: str = "BiLSTMCRF") -> NLUSettings:
        """Settings from a parameter dict, checking names and types; unknown keys are an error."""
        return cls().replace(params, component=component)

    def replace(
        self,
        params: dict[str, Any],
        *,
        component: str = "BiLSTMCRF",
        names: dict[str, str] | None = None,
    ) -> NLUSettings:
        """These settings with ``params`` set. ``names``: the name the user wrote for a setting
        where it is not ours (DIETClassifier's ``drop_rate`` for ``dropout``), for messages."""
        known = {f.name: f for f in fields(self)}
        values = asdict(self)
        for key, value in params.items():
            if key not in known:
                raise ConfigError(
                    f"{component}: unknown setting '{key}'; known settings: "
                    + ", ".join(sorted(known))
                )
            kind = type(getattr(self, key))
            values[key] = _coerce(key, value, kind, component, (names or {}).get(key, key))
        _check_ranges({key: values[key] for key in params}, component, names or {})
        return NLUSettings(**values)


# Each numeric setting's allowed range.
_RANGES: dict[str, Range] = {
    "word_dim": AT_LEAST_1,
    "char_dim": AT_LEAST_1,
    "char_filters": AT_LEAST_1,
    "max_word_chars": AT_LEAST_1,
    "count_vectors_max_features": AT_LEAST_1,
    "count_vectors_dim": AT_LEAST_1,
    "ngram_intent_weight": Range(-math.inf, 1.0, "at most 1 (negative: chosen from the data)"),
    "ngram_l2": ABOVE_0,
    "hidden": AT_LEAST_1,
    "lstm_layers": AT_LEAST_1,
    "attention_dim": AT_LEAST_1,
    "self_attention": Range(0, math.inf, "0 (off) or more"),
    "dropout": SHARE,
    "word_dropout": SHARE,
    "max_tokens": AT_LEAST_1,
    "epochs": Range(0, math.inf, "0 (chosen from the data) or more"),
    "min_steps": AT_LEAST_0,
    "target_steps": AT_LEAST_1,
    "min_epochs": AT_LEAST_1,
    "max_epochs": AT_LEAST_1,
    "batch_size": Range(0, math.inf, "0 (chosen from the data) or more"),
    "learning_rate": ABOVE_0,
    "weight_decay": AT_LEAST_0,
    "label_smoothing": SHARE,
    "language_model": AT_LEAST_0,
    "ema_decay": SHARE,
    "evaluate_on_number_of_examples": AT_LEAST_0,
    "evaluate_every_number_of_epochs": AT_LEAST_1,
    "ensemble_size": AT_LEAST_1,
    "fallback_threshold": FRACTION,
    "ambiguity_threshold": FRACTION,
    "ranking_length": AT_LEAST_0,
}


# Each text setting's allowed values.
_CHOICES: dict[str, tuple[str, ...]] = {
    "ngram_model": ("auto", "tfidf", "sum"),
    "tag_scheme": tuple(SCHEMES),
    "ensemble_tags": ("scores", "marginals"),
}


def _check_ranges(values: dict[str, Any], component: str, names: dict[str, str]) -> None:
    """A value out of its range is a ``ConfigError`` naming the setting (the pipeline adds the
    file and line), not a failure deep in training or a model that never trained."""
    wrong = out_of_range(values, _RANGES, names)
    wrong += [
        f"'count_vectors' entry {list(entry)!r} must be [analyzer, min_n, max_n] with analyzer "
        "word or char_wb and 1 <= min_n <= max_n"
        for entry in values.get("count_vectors", ())
        if len(entry) != 3 or entry[0] not in ("word", "char_wb") or not 1 <= entry[1] <= entry[2]
    ]
    wrong += [
        f"'{key}' must be one of {', '.join(choices)}, got {values[key]!r}"
        for key, choices in _CHOICES.items()
        if key in values and values[key] not in choices
    ]
    if wrong:
        raise ConfigError(f"{component}: " + "; ".join(wrong))


# What a setting missing from a model file means: the file was written before the setting
# existed, so the model behaves as models did then. Pinned here rather than read from the
# defaults above, so that changing a default later does not change what old model files mean.
# Every setting has an entry (a test checks); a new one gets the value that keeps the behaviour
# of models trained before it, and keeps it when its default changes.
ABSENT_FROM_MODEL_FILE: dict[str, Any] = {
    "word_dim": 100,
    "char_dim": 32,
    "char_filters": 64,
    "max_word_chars": 20,
    "lexical_features": True,
    "pattern_features": True,
    "zero_digits": False,  # added in session 28
    "use_regexes": True,
    "use_lookup_tables": True,
    "case_sensitive": False,
    "count_vectors": [["word", 1, 1], ["char_wb", 1, 4]],
    "count_vectors_max_features": 20000,
    "count_vectors_dim": 64,
    # Its value when it was added (commit 9b13fa6); "chosen at training time" (-1) came later,
    # and training writes the chosen share into the file.
    "ngram_intent_weight": 0.25,
    "ngram_model": "sum",  # added in session 12: models before it sum one row per n-gram
    "ngram_l2": 1e-4,  # training only
    "hidden": 128,
    "lstm_layers": 1,
    "attention_dim": 64,
    "self_attention": 0,  # added later: models before it have none
    "dropout": 0.25,
    "word_dropout": 0.1,
    "max_tokens": 512,
    "entity_recognition": True,
    "tag_scheme": "bilou",  # added in session 33: models before it tag in BILOU
    "intent_to_tagger": False,  # added in commit bebe730: models before it do not feed the intent
    "token_intent": False,  # added in session 14: models before it have no token-level intents
    "token_intent_vote": True,
    "epochs": 0,
    "min_steps": 300,
    "target_steps": 3000,
    "min_epochs": 10,
    "max_epochs": 100,
    "batch_size": 0,
    "learning_rate": 0.003,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,  # training only
    "language_model": 0.0,  # training only; added in session 15
    "ema_decay": 0.0,  # training only
    "checkpoint_model": False,  # training only
    "evaluate_on_number_of_examples": 0,  # training only
    "evaluate_every_number_of_epochs": 1,  # training only
    "ensemble_size": 1,  # added in session 11: models before it are one network
    "ensemble_tags": "scores",  # added in session 34
    "synonyms": True,
    "regex_entities": False,
    # Rasa's defaults. Before these existed the extractor matched with the
    # RegexFeaturizer's options, whose patterns (use_regexes, use_lookup_tables) the model file
    # holds, so only a case-sensitive one changes: its extractor now ignores case, as Rasa's does.
    "regex_entities_use_regexes": True,
    "regex_entities_use_lookup_tables": True,
    "regex_entities_use_word_boundaries": True,
    "regex_entities_case_sensitive": False,
    "fallback_threshold": 0.0,
    "ambiguity_threshold": 0.0,
    "ranking_length": 10,
}


@dataclass(frozen=True)
class NetSizes:
    """Vocabulary and label-set sizes: with the settings, all it takes to rebuild the network."""

    words: int
    chars: int
    lexical: int
    patterns: int
    ngrams: int
    intents: int
    tags: int  # 0: no entity tagger
    roles: int  # including "no role"; 0 or 1: no role head
    groups: int
    responses: int  # 0: no response selector

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def _coerce(key: str, value: Any, kind: type, component: str, shown: str) -> Any:
    """``value`` as the setting's type; ``shown``: the setting's name as the user wrote it."""
    if key == "count_vectors":
        try:
            return tuple((str(a), int(lo), int(hi)) for a, lo, hi in value)
        except (TypeError, ValueError, OverflowError) as error:
            raise ConfigError(
                f"{component}: '{key}' must be a list of [analyzer, min_n, max_n], got {value!r}"
            ) from error
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer of more than 308 digits
            raise ConfigError(
                f"{component}: '{shown}' is too large for a number, got {value!r:.40}..."
            ) from None
    elif kind is str and isinstance(value, str):
        return value
    raise ConfigError(f"{component}: '{shown}' must be {kind.__name__}, got {value!r}")
