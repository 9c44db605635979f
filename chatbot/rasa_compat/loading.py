"""Loading a Rasa project's own classes (custom NLU components, custom policies) and keeping what
they persist in a model file: the pieces ``chatbot.nlu.custom`` and
``chatbot.dialogue.custom_policy`` share."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from chatbot.errors import ConfigError, ModelFileError

logger = logging.getLogger(__name__)


def project_class(
    name: str,
    label: str,
    folders: Sequence[Path] = (),
    base: str = "rasa.engine.graph.GraphComponent",
    what: str = "a custom graph component",
) -> type[Any]:
    """The class ``module.Class`` names (``import_project_class``), checked to be a subclass of
    Rasa's ``base`` (a component's ``GraphComponent`` unless said). ``ConfigError`` starting with
    ``label`` otherwise."""
    found = import_project_class(name, label, folders)
    module, _, attribute = base.rpartition(".")
    required = getattr(sys.modules.get(module), attribute, None)
    if required is None or not issubclass(found, required):
        raise ConfigError(
            f"{label}: {name.rpartition('.')[2]} is not {what} (a subclass of {base})"
        )
    return found


def import_project_class(name: str, label: str, folders: Sequence[Path] = ()) -> type[Any]:
    """The class ``module.Class`` names, imported with ``folders`` on the module path (after
    everything installed) and Rasa's names provided where Rasa is not installed. ``ConfigError``
    starting with ``label`` otherwise."""
    from chatbot.rasa_compat import COMPONENT_MODULES, provide_components

    provide_components()
    for folder in folders:
        if str(folder) not in sys.path:
            sys.path.append(str(folder))
    module, _, attribute = name.rpartition(".")
    try:
        imported = import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        if missing.split(".")[0] == "rasa":
            provided = ", ".join(sorted(COMPONENT_MODULES))
            raise ConfigError(
                f"{label}: it imports {missing}, which chatbot does not provide (it provides "
                f"{provided})"
            ) from None
        looked = ", ".join(str(f) for f in folders) or "the module path"
        raise ConfigError(f"{label}: no module {missing!r} (looked in {looked})") from None
    except Exception as exc:  # the project's module failed to import
        raise ConfigError(f"{label}: importing {module} failed: {exc!r}") from None
    found = getattr(imported, attribute, None)
    if not isinstance(found, type):
        raise ConfigError(f"{label}: {module} has no class {attribute!r}")
    return found


def module_digest(found: type[Any]) -> str:
    """A digest of the source of the module that defines ``found`` (OSError where it cannot be
    read): training's fingerprints hold a project's code this way."""
    source = Path(getattr(sys.modules.get(found.__module__), "__file__", None) or "")
    return hashlib.sha256(source.read_bytes()).hexdigest()


def check_fit(found: type[Any], label: str, language: str | None) -> None:
    """Rasa's checks of a component or policy class against a project: the config's language
    among its ``supported_languages()`` (None: any) and not among its
    ``not_supported_languages()``, and its ``required_packages()`` importable. ``ConfigError``
    starting with ``label`` otherwise."""
    supported = _listed(found, "supported_languages")
    unsupported = _listed(found, "not_supported_languages")
    if language and supported is not None and language not in supported:
        raise ConfigError(
            f"{label}: it does not support the language '{language}' (config.yml's 'language'; "
            f"it supports {', '.join(map(str, supported)) or 'none'})"
        )
    if language and unsupported and language in unsupported:
        raise ConfigError(f"{label}: it does not support the language '{language}'")
    for package in _listed(found, "required_packages") or ():
        try:
            missing = importlib.util.find_spec(str(package)) is None
        except (ImportError, ValueError):
            missing = True
        if missing:
            raise ConfigError(
                f"{label}: it needs the Python package '{package}', which is not installed"
            )


def _listed(found: type[Any], method: str) -> list[Any] | None:
    made = getattr(found, method, None)
    value = made() if callable(made) else None
    return list(value) if isinstance(value, list | tuple | set) else None


def config_of(found: type[Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Rasa's config of a component or policy: its defaults updated with config.yml's."""
    defaults = getattr(found, "get_default_config", None)
    return {**((defaults() if callable(defaults) else None) or {}), **params}


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its path relative to it (``/``-separated)."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def files_to_tensors(prefix: str, files: Mapping[str, Mapping[str, bytes]]) -> dict[str, Any]:
    """Each resource's files as uint8 arrays named ``<prefix><resource>/<path>``."""
    return {
        f"{prefix}{resource}/{path}": np.frombuffer(content, dtype=np.uint8).copy()
        for resource, contents in files.items()
        for path, content in contents.items()
    }


def tensors_to_files(
    prefix: str, tensors: Mapping[str, Any], listed: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, bytes]]:
    """``files_to_tensors`` undone, for the files ``listed`` per resource (KeyError where one is
    missing)."""
    return {
        str(resource): {
            str(path): bytes(np.asarray(tensors[f"{prefix}{resource}/{path}"])) for path in paths
        }
        for resource, paths in listed.items()
    }


def unpack(files: Mapping[str, Mapping[str, bytes]]) -> Path:
    """A new temporary folder holding each resource's files (the caller removes it)."""
    root = Path(tempfile.mkdtemp(prefix="chatbot-components-"))
    try:
        for resource, contents in files.items():
            for path, content in contents.items():
                target = inside(root, resource, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def inside(root: Path, resource: str, path: str) -> Path:
    """``root/resource/path``, refused where a name would leave ``root`` (a damaged or hostile
    model file)."""
    parts = [resource, *PurePosixPath(path).parts]
    if (
        len(parts) < 2
        or any(p in ("", ".", "..") or "/" in p or "\\" in p or p.startswith("~") for p in parts)
        or PurePosixPath(path).is_absolute()
    ):
        raise ModelFileError(f"the model's stored file {resource}/{path} is invalid")
    return root.joinpath(*parts)


def served_class(find: Callable[..., type[Any]], name: str, folder: str | None) -> type[Any]:
    """``find(name, folders=...)`` (``component_class``, ``policy_class``) for a served model: its
    code looked for in ``search_folders``; ``ModelFileError`` where it is not there."""
    try:
        return find(name, folders=search_folders(folder))
    except ConfigError as exc:
        raise ModelFileError(
            f"{exc}; run chatbot from the project's folder, where its code is"
        ) from None


def load_instance(
    found: type[Any],
    params: Mapping[str, Any],
    storage: Any,
    resource_name: str,
    label: str,
    model_id: str | None = None,
) -> Any:
    """``found.load`` as Rasa calls it for a served model (its config, the model storage, its
    resource); ``ModelFileError`` naming ``label`` where it fails."""
    from chatbot.rasa_compat.engine import ExecutionContext, Resource

    try:
        return found.load(
            config_of(found, params),
            storage,
            Resource(resource_name),
            ExecutionContext(model_id=model_id, node_name=resource_name),
        )
    except Exception as exc:
        logger.debug("loading %s failed", label, exc_info=True)
        raise ModelFileError(f"{label} failed to load: {type(exc).__name__}: {exc}") from exc


def search_folders(folder: str | None) -> list[Path]:
    """Where a served model's project code is imported from: the working directory, then the
    project's folder recorded at training."""
    found = [Path.cwd()]
    if folder and Path(folder).is_dir() and Path(folder) != Path.cwd():
        found.append(Path(folder))
    return found
