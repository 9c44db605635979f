"""Reading config.yml into a ``ProjectConfig``: language, pipeline, policies, assistant_id.

Which components exist is decided by those who build them; here each entry only needs a ``name``.
An empty or missing pipeline or policies section is allowed (defaults are chosen elsewhere).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.project.config import ComponentConfig, ProjectConfig
from chatbot.project.domain import Origin
from chatbot.project.yaml_io import (
    expect,
    line_of,
    load_yaml,
    misspelled_keys,
    setting_not_named,
    to_plain,
)

logger = logging.getLogger(__name__)

CONFIG_KEYS = ("recipe", "language", "pipeline", "policies", "assistant_id", "importers")
RECIPES = ("default.v1",)


def read_config(path: Path) -> ProjectConfig:
    """config.yml; every problem in it raised at once as ``ProjectErrors``."""
    file = str(path)
    config, errors = config_from_dict(load_yaml(path, file=file), file)
    if errors:
        raise ProjectErrors(errors)
    return config


def config_from_dict(
    data: Any, file: str | None = None
) -> tuple[ProjectConfig, list[ProjectError]]:
    if data is None:
        return ProjectConfig(file=file), []
    try:
        expect(data, dict, what="config.yml", file=file, line=line_of(data) or 1)
    except ProjectError as e:
        return ProjectConfig(file=file), [e]
    # Rasa's config schema takes any key (many projects' config.yml says `version:`).
    errors = misspelled_keys(data, (*CONFIG_KEYS, "version"), file=file, what="the config")
    recipe = data.get("recipe")
    if recipe is not None and recipe not in RECIPES:
        errors.append(
            ProjectError(
                "unsupported recipe",
                file=file,
                line=line_of(data, "recipe"),
                key="recipe",
                value=recipe,
                hint=f"Supported recipes: {', '.join(RECIPES)}",
            )
        )
    language = data.get("language")
    if language is None:
        language = "en"
    elif not isinstance(language, str) or not language.strip():
        errors.append(
            ProjectError(
                "'language' must be a language code such as 'en'",
                file=file,
                line=line_of(data, "language"),
                key="language",
                value=language if isinstance(language, (int, float, bool)) else None,
            )
        )
        language = "en"
    assistant_id = data.get("assistant_id")
    if assistant_id is not None and not isinstance(assistant_id, str):
        assistant_id = str(assistant_id)
    sections = {}
    for key in ("pipeline", "policies"):
        components, section_errors = _components(
            data.get(key), key, file=file, line=line_of(data, key)
        )
        sections[key] = components
        errors.extend(section_errors)
    config = ProjectConfig(
        language=language.strip(),
        pipeline=sections["pipeline"],
        policies=sections["policies"],
        assistant_id=assistant_id,
        file=file,
    )
    return config, errors


def _components(
    data: Any, section: str, *, file: str | None, line: int | None
) -> tuple[tuple[ComponentConfig, ...], list[ProjectError]]:
    if data is None:
        return (), []
    try:
        expect(data, list, what=f"'{section}'", file=file, line=line, key=section)
    except ProjectError as e:
        return (), [e]
    components: list[ComponentConfig] = []
    errors: list[ProjectError] = []
    for index, item in enumerate(data):
        at = line_of(data, index) or line
        if not isinstance(item, dict):
            errors.append(
                ProjectError(
                    f"each entry of '{section}' must be a mapping with a 'name'",
                    file=file,
                    line=at,
                    key=section,
                    value=item if isinstance(item, (str, int, float)) else None,
                    hint=f"Write '- name: {item}'" if isinstance(item, str) else None,
                )
            )
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.append(
                ProjectError(
                    f"an entry of '{section}' has no 'name'",
                    file=file,
                    line=line_of(item, "name") if "name" in item else at,
                    key="name",
                )
            )
            continue
        not_named = setting_not_named(item, name.strip(), file=file, line=at, example="epochs: 100")
        if not_named is not None:
            errors.append(not_named)
            continue
        errors.extend(_epochs_beyond_bound(item, name.strip(), file=file))
        params = {k: to_plain(v) for k, v in item.items() if k != "name"}
        components.append(ComponentConfig(name.strip(), params, Origin(file, at)))
    return tuple(components), errors


# More epochs than any real project trains for: a typing slip (1000000000000), whose training
# would never end (and, with the NLU's warm-up a share of the steps, never learn either).
MAX_EPOCHS = 100_000
EPOCH_KEYS = ("epochs", "min_epochs")


def _epochs_beyond_bound(
    item: dict[str, Any], name: str, *, file: str | None
) -> list[ProjectError]:
    """An error for each epoch count of a component (any component: Rasa's DIETClassifier,
    TEDPolicy, ResponseSelector and ours all call it ``epochs``) above ``MAX_EPOCHS``; values of
    the wrong type are left to the component's own check."""
    return [
        ProjectError(
            f"{name}: '{key}' must be at most {MAX_EPOCHS:,}, got {item[key]!r}",
            file=file,
            line=line_of(item, key),
            hint="No training needs more; this many would not end in any reasonable time",
        )
        for key in EPOCH_KEYS
        if isinstance(item.get(key), (int, float))
        and not isinstance(item[key], bool)
        and item[key] > MAX_EPOCHS
    ]
