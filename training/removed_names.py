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


def unknown_name_hint(
    name: str, removed: dict[str, str], known: list[str], what: str, plural: str
) -> str:
    """What follows "unknown <what> '<name>'; " in the error: what took a removed name's place,
    or the known names. (A dotted name is a project's own class: ``chatbot.nlu.custom``,
    ``chatbot.dialogue.custom_policy``.)"""
    if name in removed:
        return removed[name]
    return f"known {plural}: {', '.join(sorted(known))}"
