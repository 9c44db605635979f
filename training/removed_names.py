"""NLU components and policies that Rasa itself removed or renamed, and that we do not accept in
their place (the others, such as FormPolicy or KerasPolicy, are accepted with a notice): a
project still naming one gets what took its place as its error, instead of every known name."""

from __future__ import annotations

REMOVED_COMPONENTS = {
    "DucklingHTTPExtractor": "renamed DucklingEntityExtractor in Rasa 2.0",
    "EmbeddingIntentClassifier": "removed in Rasa 2.0; DIETClassifier took its place",
}
REMOVED_POLICIES = {
    "EmbeddingPolicy": "removed in Rasa 2.0; TEDPolicy took its place",
    "SklearnPolicy": "removed in Rasa 3.0; TEDPolicy took its place",
}
