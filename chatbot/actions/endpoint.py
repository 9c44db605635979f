"""Which custom-action executor endpoints.yml's ``action_endpoint`` asks for."""

from __future__ import annotations

from pathlib import Path

from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.registry import CustomActionExecutor
from chatbot.actions.remote import DEFAULT_TIMEOUT, HTTPActionExecutor
from chatbot.errors import ConfigError
from chatbot.project.endpoints import EndpointBlock


def create_action_executor(
    block: EndpointBlock | None, project_dir: Path
) -> CustomActionExecutor | None:
    if block is None:
        return None
    where = f"{block.origin.file}:{block.origin.line}: " if block.origin.file else ""
    params = block.params
    if params.get("actions_module"):
        return InProcessExecutor(project_dir, str(params["actions_module"]))
    url = params.get("url")
    if isinstance(url, str) and url:
        timeout = params.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(
                f"{where}action_endpoint: 'timeout' must be a positive number of seconds, "
                f"not {timeout!r}"
            )
        token = params.get("token")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return HTTPActionExecutor(url, timeout=float(timeout), headers=headers)
    raise ConfigError(
        f"{where}action_endpoint needs 'url' (an action server) or 'actions_module' (in-process)"
    )
