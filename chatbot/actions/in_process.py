"""Custom actions run in-process through rasa-sdk's own executor, without HTTP
(``action_endpoint: actions_module: actions`` in endpoints.yml)."""

from __future__ import annotations

import hashlib
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
from chatbot.paths import is_file

logger = logging.getLogger(__name__)


def import_actions(project_dir: Path, module: str) -> ModuleType:
    """Import the project's actions package (or module) under a name unique to its path, so two
    projects' ``actions`` packages in one process do not collide."""
    if not all(part.isidentifier() for part in module.split(".")):
        raise ConfigError(
            f"actions_module {module!r} is not a Python module name (such as 'actions' or "
            "'bot.actions')"
        )
    base = project_dir.resolve() / Path(*module.split("."))
    init = base / "__init__.py"
    path, search = (init, [str(base)]) if is_file(init) else (base.with_suffix(".py"), None)
    if not is_file(path):
        raise ConfigError(
            f"actions_module '{module}': neither {init} nor {base.with_suffix('.py')} exists"
        )
    unique = "chatbot_actions_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise ConfigError(f"actions_module '{module}': cannot import {path}")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[unique] = loaded
    try:
        spec.loader.exec_module(loaded)
    except Exception as exc:
        del sys.modules[unique]
        raise ConfigError(f"actions_module '{module}': importing {path} failed: {exc!r}") from exc
    return loaded


def project_actions(package: ModuleType) -> list[type]:
    """The rasa-sdk actions of the project's actions package (or module): every concrete
    ``Action`` subclass its modules define or import, rasa-sdk's own left out (as rasa-sdk
    leaves them out); submodules are imported first, as rasa-sdk imports them."""
    from rasa_sdk import Action

    modules = [package]
    if hasattr(package, "__path__"):
        prefix = package.__name__ + "."
        for info in pkgutil.walk_packages(package.__path__, prefix):
            modules.append(importlib.import_module(info.name))
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
        # Not rasa-sdk's register_package: it registers every Action subclass the process has
        # imported, so a second project's actions (tests, an application serving two bots)
        # would answer for this one's where their names meet.
        for action in project_actions(import_actions(project_dir, module)):
            self.executor.register_action(action)
        self.domain_json = DomainJSONCache()

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
