"""Reading endpoints.yml and credentials.yml into ``Endpoints`` and ``Credentials``.

Each top-level block is kept as written (a dict) with its origin; the part that uses a block checks
its keys. As in Rasa, ``${NAME}`` in a value is replaced by the environment variable ``NAME``; a
variable that is not set is an error naming the file, the line and the variable.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatbot.errors import ProjectError, ProjectErrors
from chatbot.project.domain import Origin
from chatbot.project.endpoints import Credentials, EndpointBlock, Endpoints
from chatbot.project.yaml_io import (
    describe_type,
    line_of,
    load_yaml,
    setting_not_named,
    to_plain,
)

logger = logging.getLogger(__name__)

_ENV_VAR = re.compile(r"\$\{([^}]*)\}")


class UnsetVariable(ProjectError):
    """``${NAME}`` in endpoints.yml or credentials.yml with ``NAME`` not set: an error where
    the bot starts, a warning where the files are only read (training, ``data validate``: a
    CI build has no secrets, and Rasa reads neither file there)."""


def read_endpoints(path: Path, *, env: Mapping[str, str] | None = None) -> Endpoints:
    """endpoints.yml; ``env`` defaults to ``os.environ``. All problems raised at once."""
    file = str(path)
    endpoints, errors = endpoints_from_dict(load_yaml(path, file=file), file, env=env)
    if errors:
        raise ProjectErrors(errors)
    return endpoints


def read_credentials(path: Path, *, env: Mapping[str, str] | None = None) -> Credentials:
    """credentials.yml; ``env`` defaults to ``os.environ``. All problems raised at once."""
    file = str(path)
    credentials, errors = credentials_from_dict(load_yaml(path, file=file), file, env=env)
    if errors:
        raise ProjectErrors(errors)
    return credentials


def endpoints_from_dict(
    data: Any, file: str | None = None, *, env: Mapping[str, str] | None = None
) -> tuple[Endpoints, list[ProjectError]]:
    # A block written with no value (``tracker_store:``) is absent, as in Rasa.
    blocks, errors = _blocks(data, file, env, empty_means_absent=True, what="endpoints")
    return Endpoints(blocks=blocks, file=file), errors


def credentials_from_dict(
    data: Any, file: str | None = None, *, env: Mapping[str, str] | None = None
) -> tuple[Credentials, list[ProjectError]]:
    # A channel written with no value (``rest:``) is enabled with no settings.
    blocks, errors = _blocks(data, file, env, empty_means_absent=False, what="credentials")
    return Credentials(channels=blocks, file=file), errors


def _blocks(
    data: Any,
    file: str | None,
    env: Mapping[str, str] | None,
    *,
    empty_means_absent: bool,
    what: str,
) -> tuple[dict[str, EndpointBlock], list[ProjectError]]:
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        error = ProjectError(
            f"the {what} file must be a mapping of block names, found {describe_type(data)}",
            file=file,
            line=line_of(data) or 1,
        )
        return {}, [error]
    errors: list[ProjectError] = []
    substituted = substitute_env_vars(
        data, file=file, env=os.environ if env is None else env, errors=errors
    )
    blocks: dict[str, EndpointBlock] = {}
    for name, params in substituted.items():
        line = line_of(data, name)
        if name == "version":  # a Rasa file's format version (`version: "3.1"`), not a block
            continue
        if params is None:
            if empty_means_absent:
                continue
            params = {}
        if not isinstance(params, dict):
            errors.append(
                ProjectError(
                    f"'{name}' must be a mapping of settings, found {describe_type(params)}",
                    file=file,
                    line=line,
                    key=str(name),
                )
            )
            continue
        not_named = setting_not_named(
            params, str(name), file=file, line=line, example="url: http://localhost:5055"
        )
        if not_named is not None:
            errors.append(not_named)
            continue
        blocks[str(name)] = EndpointBlock(str(name), to_plain(params), Origin(file, line))
    return blocks, errors


def substitute_env_vars(
    value: Any,
    *,
    file: str | None,
    env: Mapping[str, str],
    errors: list[ProjectError],
    line: int | None = None,
    key: str | None = None,
) -> Any:
    """``value`` with ``${NAME}`` in every string replaced; unset variables go to ``errors``.

    Mappings and lists keep their line numbers (the same ``YamlMap``/``YamlList`` is filled in).
    """
    if isinstance(value, dict):
        for k in list(value):
            value[k] = substitute_env_vars(
                value[k],
                file=file,
                env=env,
                errors=errors,
                line=line_of(value, k) or line,
                key=str(k),
            )
        return value
    if isinstance(value, list):
        for index in range(len(value)):
            value[index] = substitute_env_vars(
                value[index],
                file=file,
                env=env,
                errors=errors,
                line=line_of(value, index) or line,
                key=key,
            )
        return value
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in env:
            return env[name]
        kind = UnsetVariable if name else ProjectError
        errors.append(
            kind(
                f"environment variable '{name}' is not set" if name else "empty '${}' in a value",
                file=file,
                line=line,
                key=key,
                hint="Set it before starting the bot, or write the value itself",
            )
        )
        return match.group(0)

    return _ENV_VAR.sub(replace, value)
