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
    that a dotted name is a Python class we do not import (Rasa imports custom components by
    their module path), or the known names."""
    if name in removed:
        return removed[name]
    listed = ", ".join(sorted(known))
    if "." in name:
        return (
            f"a custom {what} class (a Python module path), which is not loaded here: custom "
            f"{plural} are not supported; remove it or use one of: {listed}"
        )
    return f"known {plural}: {listed}"
