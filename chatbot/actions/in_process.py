"""Custom actions run in-process through rasa-sdk's own executor, without HTTP
(``action_endpoint: actions_module: actions`` in endpoints.yml)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from chatbot.actions.action_call import DomainJSONCache, action_call
from chatbot.actions.base import ActionContext
from chatbot.errors import ActionError, ActionRejected, ConfigError
from chatbot.paths import is_dir, is_file

logger = logging.getLogger(__name__)


def import_actions(project_dir: Path, module: str) -> ModuleType:
    """Import the project's actions package (or module) under its own name, as rasa-sdk's
    action server does, so that its modules may import each other by it (``from
    actions.parsing import ...``); the project's folder is on the import path (its other
    modules too). A package folder without ``__init__.py`` is read as rasa-sdk reads it. Where
    another project's package of that name was imported before (tests, a process serving two
    bots), it leaves ``sys.modules`` first: each executor keeps the actions it registered."""
    if not all(part.isidentifier() for part in module.split(".")):
        raise ConfigError(
            f"actions_module {module!r} is not a Python module name (such as 'actions' or "
            "'bot.actions')"
        )
    root = project_dir.resolve()
    base = root / Path(*module.split("."))
    init = base / "__init__.py"
    if is_file(init):
        path: Path | None = init
        search: list[str] | None = [str(base)]
    elif is_file(base.with_suffix(".py")):
        path, search = base.with_suffix(".py"), None
    elif is_dir(base) and any(is_file(child) for child in base.glob("*.py")):
        path, search = None, [str(base)]  # a namespace package
    else:
        raise ConfigError(
            f"actions_module '{module}': neither {init} nor {base.with_suffix('.py')} exists"
        )
    where = str(path or base)
    loaded = sys.modules.get(module)
    if loaded is not None and _origin(loaded) == where:
        return loaded
    for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
        del sys.modules[name]  # another project's package of the same name
    if str(root) not in sys.path:
        sys.path.append(str(root))  # after everything installed: nothing of it is shadowed
    if path is None:
        spec = importlib.util.spec_from_loader(module, None, is_package=True)
    else:
        spec = importlib.util.spec_from_file_location(
            module, path, submodule_search_locations=search
        )
    if spec is None or (path is not None and spec.loader is None):
        raise ConfigError(f"actions_module '{module}': cannot import {where}")
    if path is None:
        spec.submodule_search_locations = search
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module] = loaded
    try:
        if spec.loader is not None:
            spec.loader.exec_module(loaded)
    except Exception as exc:
        del sys.modules[module]
        raise ConfigError(f"actions_module '{module}': importing {where} failed: {exc!r}") from exc
    return loaded


def _origin(module: ModuleType) -> str | None:
    """The file (or, for a namespace package, the folder) a module was imported from."""
    file = getattr(module, "__file__", None)
    if file:
        return str(Path(file).resolve())
    paths = list(getattr(module, "__path__", None) or [])
    return str(Path(paths[0]).resolve()) if paths else None


def project_actions(package: ModuleType) -> list[type]:
    """The rasa-sdk actions of the project's actions package (or module): every concrete
    ``Action`` subclass its modules define or import, rasa-sdk's own left out (as rasa-sdk
    leaves them out); submodules are imported first, as rasa-sdk imports them."""
    from rasa_sdk import Action

    modules = [package]
    if hasattr(package, "__path__"):
        prefix = package.__name__ + "."
        name = package.__name__
        try:
            for info in pkgutil.walk_packages(package.__path__, prefix):
                name = info.name
                modules.append(importlib.import_module(name))
        except Exception as exc:  # the user's module failed to import
            raise ConfigError(f"actions_module: importing {name} failed: {exc!r}") from exc
    found: dict[str, type] = {}
    for loaded in modules:
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and issubclass(value, Action)
                and not value.__module__.startswith(("rasa_sdk.", "rasa.", "rasa_core"))
                and not inspect.isabstract(value)
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


class InProcessExecutor:
    def __init__(self, project_dir: Path, module: str = "actions") -> None:
        from rasa_sdk.executor import ActionExecutor

        self.executor = ActionExecutor()
        self.module = module
        self.project_dir = project_dir
        # Not rasa-sdk's register_package: it registers every Action subclass the process has
        # imported, so a second project's actions (tests, an application serving two bots)
        # would answer for this one's where their names meet.
        for action in project_actions(import_actions(project_dir, module)):
            self.executor.register_action(action)
        self.domain_json = DomainJSONCache()

    @property
    def action_names(self) -> frozenset[str]:
        """The names the module's actions registered: the only custom actions it can run."""
        return frozenset(self.executor.actions)

    async def run(self, name: str, ctx: ActionContext) -> dict[str, Any]:
        from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

        call = action_call(name, ctx, self.domain_json.get(ctx.domain))
        try:
            result = await self.executor.run(call)
        except ActionExecutionRejection as exc:
            raise ActionRejected(name, str(exc.message)) from exc
        except ActionNotFoundException as exc:
            raise ActionError(name, "not found in the actions module") from exc
        except Exception as exc:  # the user's action code failed
            logger.exception("custom action %s raised", name)
            raise ActionError(name, f"raised {exc!r}") from exc
        if result is None:
            return {"events": [], "responses": []}
        answer = result.model_dump() if hasattr(result, "model_dump") else result
        try:
            # What the action server would send: JSON. A set, a datetime or a NaN the action
            # put in an event is its failure, as it is over HTTP, not a turn that cannot be stored.
            return dict(json.loads(json.dumps(answer, allow_nan=False)))
        except (TypeError, ValueError, RecursionError) as exc:
            raise ActionError(name, f"its answer is not JSON ({exc})") from exc

    async def ping(self) -> bool:
        """Always answers: the actions run in this process."""
        return True

    async def close(self) -> None:
        """Nothing to release."""
