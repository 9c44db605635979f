"""Which action object runs a given action name."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from chatbot.actions.base import (
    Action,
    ActionContext,
    bot_event,
    message_problem,
    with_metadata,
)
from chatbot.actions.builtin import BUILTIN_ACTIONS
from chatbot.actions.forms import FormAction
from chatbot.actions.responses import (
    EndToEndResponse,
    ResponseAction,
    RetrievalAction,
    is_retrieval_action,
)
from chatbot.conversation.events import Event, InvalidEvent, validate_events
from chatbot.conversation.responses import MESSAGE_KEYS
from chatbot.errors import ActionError, ConfigError
from chatbot.project.domain import Domain

logger = logging.getLogger(__name__)


class CustomActionExecutor(Protocol):
    """Runs custom actions: over HTTP (rasa-sdk action server) or in-process (rasa-sdk executor).

    Returns rasa-sdk's response: ``{"events": [...], "responses": [...]}``. Raises ActionRejected
    when the action rejects itself, ActionError when it cannot be run.
    """

    async def run(self, name: str, ctx: ActionContext) -> dict[str, Any]: ...


class CustomAction(Action):
    def __init__(self, name: str, executor: CustomActionExecutor | None) -> None:
        self.name = name
        self.executor = executor

    async def run(self, ctx: ActionContext) -> list[Event]:
        if self.executor is None:
            raise ActionError(
                self.name, "no action endpoint is configured (endpoints.yml action_endpoint)"
            )
        result = await self.executor.run(self.name, ctx)
        try:
            events = validate_events(result.get("events") or [], f"action '{self.name}' events")
        except Exception as exc:
            raise ActionError(self.name, str(exc)) from exc
        responses = result.get("responses") or []
        if not isinstance(responses, list):
            raise ActionError(self.name, "the action's 'responses' are not a list")
        bots = [e for r in responses for e in await _response_events(self.name, r, ctx)]
        try:  # a message's custom payload or image could hold what JSON cannot (NaN)
            bots = validate_events(bots, f"action '{self.name}' responses")
        except InvalidEvent as exc:
            raise ActionError(self.name, str(exc)) from exc
        return [*bots, *events]


async def _response_events(action: str, response: Any, ctx: ActionContext) -> list[Event]:
    """A rasa-sdk ``dispatcher.utter_message`` entry as bot events. An entry that names a
    response sends it as Rasa's RemoteAction does (``ActionContext.respond``): worded by the
    NLG server or the domain, with the entry's other keys as the template values or the NLG
    request's ``arguments``, then added to the message. An entry that is no message (a text
    that is not a string, metadata that is not an object) is the action's failure."""
    if not isinstance(response, dict):
        return []
    problem = message_problem(response)
    if problem is not None:
        raise ActionError(action, f"a response is no message: {problem}")
    name = response.get("response") or response.get("template")
    given = {k: v for k, v in response.items() if k not in ("response", "template")}
    if given.get("json_message"):
        given["custom"] = given.pop("json_message")
    if name:
        return await ctx.respond(str(name), given)
    # Keys of no message (``utter_message(text=..., mood="happy")``) are the bot event's
    # metadata, as Rasa's create_bot_utterance keeps them.
    message = with_metadata({k: v for k, v in given.items() if k in MESSAGE_KEYS}, given)
    return [bot_event(message)]


class ActionRegistry:
    """Action names -> action objects: the in-process ``actions`` the bot was given first
    (``{"action_query_knowledge_base": KnowledgeBaseQueryAction(kb, ...)}``), then built-ins,
    forms and responses; any other name is a custom action run by the executor."""

    def __init__(
        self,
        domain: Domain,
        executor: CustomActionExecutor | None = None,
        actions: Mapping[str, Action] | None = None,
    ) -> None:
        self.domain = domain
        self.executor = executor
        self.actions = dict(actions or {})
        for name, action in self.actions.items():
            if action.name != name:
                raise ConfigError(f"in-process action '{action.name}' registered as '{name}'")
        self._cache: dict[str, Action] = {}

    def get(self, name: str) -> Action:
        action = self._cache.get(name)
        if action is None:
            action = self._make(name)
            self._cache[name] = action
        return action

    def custom_actions(self) -> list[str]:
        """The domain's actions (``actions:``) that only the executor can run: those that no
        in-process action, default action, form or response answers for. A default action, a
        form's name or ``validate_<form>`` listed there is the project's own, as in Rasa; one
        not listed is never asked of the executor."""
        listed = dict.fromkeys(self.domain.actions)
        return [name for name in listed if isinstance(self.get(name), CustomAction)]

    def warn_unserved(self) -> None:
        """Warn where the domain's custom actions have nothing to run them: the in-process
        actions module registers not all of them, or no action endpoint is configured (else
        the model is served without a word, and every turn that reaches such an action fails).
        Said once per model served (startup, PUT /model, a model server's new model); a warning
        only, as Rasa does not check it at all. An action server (``url:``) is not asked: it
        may start after this server."""
        if self.executor is None:
            custom = self.custom_actions()
            if custom:
                logger.warning(
                    "the model's domain lists custom actions (%s) but no action endpoint is "
                    "configured: every turn that runs one will fail; configure one in "
                    "endpoints.yml: 'action_endpoint: {url: http://localhost:5055/webhook}' (a "
                    "rasa-sdk action server) or 'action_endpoint: {actions_module: actions}' "
                    "(the project's actions, run in this process)",
                    _names(custom),
                )
            return
        registered = getattr(self.executor, "action_names", None)  # in-process actions only
        if registered is None:
            return
        missing = [name for name in self.custom_actions() if name not in registered]
        if missing:
            logger.warning(
                "the model's domain needs custom actions that the actions module '%s' of %s "
                "(endpoints.yml action_endpoint) does not register: %s; every turn that runs "
                "one will fail (add them to the module, or serve the model with the project it "
                "was trained from)",
                getattr(self.executor, "module", "?"),
                getattr(self.executor, "project_dir", "?"),
                _names(missing),
            )

    def _make(self, name: str) -> Action:
        if name in self.actions:
            return self.actions[name]
        if name in BUILTIN_ACTIONS and name not in self.domain.actions:
            return BUILTIN_ACTIONS[name]()
        if name in self.domain.forms and name not in self.domain.actions:
            return FormAction(name)
        if is_retrieval_action(name, self.domain):
            return RetrievalAction(name)
        if name.startswith("utter_"):
            # As Rasa's: every ``utter_`` action is a response, also one the domain lacks (an
            # NLG server words it; without one it says nothing).
            return ResponseAction(name)
        if name in self.domain.action_texts and name not in self.domain.actions:
            return EndToEndResponse(name)
        return CustomAction(name, self.executor)


def _names(names: list[str], shown: int = 10) -> str:
    """``names`` for a log line: the first ``shown``, then how many more."""
    rest = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {rest} more" if rest > 0 else "")
