"""``chatbot shell``, ``chatbot shell nlu`` and ``chatbot interactive``: talking to a trained bot
in the terminal (joined to ``chatbot.cli_common.main`` by ``chatbot.cli``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import click

from chatbot.cli_common import (
    _load_model,
    _load_project,
    debug_option,
    from_parent,
    line_editing,
    log_options,
    log_options_of,
    main,
    model_file_path,
    model_option,
    project_option,
    quiet_action_registry,
    spaced_command,
    stacked,
    user_errors,
)
from chatbot.errors import ModelFileError
from chatbot.log_setup import apply_log_options
from chatbot.ranges import whole_number

_endpoints_option = click.option(
    "--endpoints",
    "endpoints_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The action server and stores to use (Rasa's --endpoints; default: the project's "
    "endpoints.yml).",
)


def _sender_option() -> Callable[[Any], Any]:
    return click.option(
        "--sender",
        "--conversation-id",
        "sender",
        default=lambda: uuid.uuid4().hex,
        show_default="a new one each time, as Rasa's",
        help="Conversation id (Rasa's --conversation-id).",
    )


def _no_server(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value not in (None, False, ()):
        click.echo(
            f"{param.opts[-1]}: no effect here: `chatbot shell` talks to the bot in this "
            "process, without a server (`chatbot run` serves one)",
            err=True,
        )
    return value


def _server_option(*names: str, flag: bool = False, multiple: bool = False) -> Any:
    return click.option(
        *names,
        is_flag=flag,
        multiple=multiple,
        expose_value=False,
        callback=_no_server,
        help="Rasa's server option, accepted: no effect here.",
    )


# `rasa shell` starts a server and talks to it over HTTP, so it takes `rasa run`'s options; this
# shell talks to the bot in-process. A Rasa command line still works: each such option that is
# given says in one line that it changes nothing. The log options do what they do for `run`.
_rasa_server_options = stacked(
    _server_option("-i", "--interface"),
    _server_option("-p", "--port"),
    _server_option("-t", "--auth-token"),
    _server_option("--cors", multiple=True),
    _server_option("--enable-api", flag=True),
    _server_option("--response-timeout"),
    _server_option("--request-timeout"),
    _server_option("--remote-storage"),
    _server_option("--ssl-certificate"),
    _server_option("--ssl-keyfile"),
    _server_option("--ssl-ca-file"),
    _server_option("--ssl-password"),
    _server_option("--credentials"),
    _server_option("--connector"),
    _server_option("--jwt-secret"),
    _server_option("--jwt-method"),
    _server_option("--jwt-private-key"),
    _server_option("--skip-validation", flag=True),
)


@main.group(invoke_without_command=True, cls=spaced_command(click.Group, {"--cors": "repeat"}))
@project_option
@model_option
@_sender_option()
@_endpoints_option
@_rasa_server_options
@log_options
@debug_option
@click.pass_context
@user_errors
def shell(
    ctx: click.Context,
    project_dir: Path,
    model_path: Path | None,
    sender: str,
    endpoints_path: Path | None,
    **logging_options: Any,
) -> None:
    """Talk to the bot in the terminal (/stop or Ctrl-D to leave; `chatbot shell nlu`: see what
    the NLU makes of each message). The conversation is kept where endpoints.yml's
    tracker_store says (in memory without one, as Rasa's shell), and its NLG server, event broker
    and action server are used as `chatbot run` uses them."""
    if ctx.invoked_subcommand is not None:  # `chatbot shell --project X nlu`: X holds for nlu
        ctx.obj = {"project_dir": project_dir, "model_path": model_path}
        return
    apply_log_options(log_options_of(logging_options))
    quiet_action_registry()
    agent = _agent(project_dir, _load_model(project_dir, model_path), endpoints_path)
    click.echo("Bot loaded. Type a message and press enter (/stop to exit).")
    if not agent.model.policies:
        click.echo(
            "This model has no dialogue policies (`chatbot train nlu`): the bot does not "
            "answer. `chatbot shell nlu` shows what the NLU makes of each message."
        )

    line_editing()

    async def talk() -> None:
        buttons: list[Any] = []  # the last buttons shown: a number typed is one of them
        async with _opened(agent):
            while True:
                try:
                    text = await asyncio.to_thread(input, "Your input -> ")
                except EOFError:
                    return
                text = text.strip()
                if text in ("/stop", "/exit", "/quit"):
                    return
                if not text:
                    continue
                text = _button_payload(text, buttons)
                messages = await agent.handle_text(text, sender, input_channel="cmdline")
                for message in messages:
                    _print_message(message)
                shown = [m.get("buttons") or m.get("quick_replies") for m in messages]
                buttons = next((b for b in reversed(shown) if isinstance(b, list) and b), [])

    asyncio.run(talk())


def _agent(project_dir: Path, model: Any, endpoints_path: Path | None) -> Any:
    """The agent the shell and interactive learning talk to, with endpoints.yml's stores,
    action server, NLG server and event broker, as Rasa's (which serve them through a server):
    the conversation in memory where endpoints.yml names no tracker store."""
    from chatbot.server.app import agent_from_endpoints, read_endpoints

    endpoints = read_endpoints(project_dir, endpoints_path)
    return agent_from_endpoints(model, endpoints, project_dir, default_sqlite_path=None)


@contextlib.asynccontextmanager
async def _opened(agent: Any) -> AsyncIterator[None]:
    """The agent's store and broker started, and everything it holds closed after. A store
    that cannot be reached leaves the conversation in memory, as Rasa's shell does (its
    FailSafeTrackerStore)."""
    from chatbot.errors import StoreUnavailable
    from chatbot.store.memory import InMemoryStore

    try:
        try:
            await agent.store.start()
        except StoreUnavailable as error:
            click.secho(f"warning: {error}; this conversation is kept in memory", err=True)
            await agent.store.close()
            agent.replace_store(InMemoryStore())
        if agent.broker is not None:
            await agent.broker.start()
        yield
    finally:
        close = getattr(agent.action_executor, "close", None)
        if close is not None:
            await close()
        await agent.close()
        await agent.locks.close()


@main.command()
@debug_option
@project_option
@model_option
@_sender_option()
@_endpoints_option
@click.option(
    "--skip-visualization",
    is_flag=True,
    help="Rasa's flag, accepted: no story graph is served (`chatbot visualize` draws one).",
)
@user_errors
def interactive(
    project_dir: Path,
    model_path: Path | None,
    sender: str,
    endpoints_path: Path | None,
    skip_visualization: bool,
) -> None:
    """Talk to the bot and confirm or correct each step (Rasa's `rasa interactive`); export
    writes the corrected conversation as stories and NLU examples to a new file in data/. With
    no trained model, the project is trained first."""
    from chatbot.agent import TrainedModel, latest_model
    from chatbot.interactive import InteractiveSession

    if model_path is None:
        try:
            model_path = latest_model(project_dir / "models")
        except ModelFileError:
            from training.train import train_to_file

            project = _load_project(project_dir)
            model_path = model_file_path(project_dir, None, None)
            click.echo("No trained model: training the project first ...")
            train_to_file(project, model_path, show_progress=False)
            click.echo(f"Trained model saved to {model_path}")
    quiet_action_registry()
    agent = _agent(project_dir, TrainedModel.from_file(model_path), endpoints_path)
    names = ("domain.yml", "domain.yaml", "domain")  # where new intents are exported to
    domain_path = next((p for p in (project_dir / n for n in names) if p.exists()), None)

    line_editing()

    async def ask(prompt: str) -> str:
        return await asyncio.to_thread(input, prompt)

    async def learn() -> None:
        session = InteractiveSession(
            agent, project_dir / "data", ask, click.echo, sender, domain_path=domain_path
        )
        async with _opened(agent):
            await session.run()

    asyncio.run(learn())


@shell.command(name="nlu")
@debug_option
@project_option
@model_option
@click.pass_context
@user_errors
def shell_nlu(ctx: click.Context, project_dir: Path, model_path: Path | None) -> None:
    """Type messages and see the NLU's parse of each as JSON (Rasa's `rasa shell nlu`)."""
    project_dir = from_parent(ctx, "project_dir", project_dir)  # `chatbot shell --project X nlu`
    model_path = from_parent(ctx, "model_path", model_path)
    model = _load_model(project_dir, model_path)
    click.echo("NLU model loaded. Type a message and press enter to parse it (/stop to exit).")
    line_editing()

    async def parse() -> None:
        from chatbot.nlu.duckling import DucklingClient

        duckling = DucklingClient()  # asked where the pipeline has a DucklingEntityExtractor
        try:
            while True:
                try:
                    text = await asyncio.to_thread(input, "Next message: ")
                except EOFError:
                    return
                if text.strip() in ("/stop", "/exit", "/quit"):
                    return
                if text.strip():
                    parsed = await model.parse(text, duckling)
                    click.echo(json.dumps(parsed, indent=2, ensure_ascii=False))
        finally:
            await duckling.close()

    asyncio.run(parse())


def _button_payload(text: str, buttons: list[Any]) -> str:
    """What to send for ``text``: the payload of the button of that number where the bot's last
    message had buttons (as choosing one in Rasa's shell does), else the text itself."""
    number = whole_number(text)
    if number is None or not 1 <= number <= len(buttons):
        return text
    button = buttons[number - 1]
    payload = button.get("payload") if isinstance(button, dict) else None
    if not isinstance(payload, str) or not payload:
        return text
    click.echo(f"  ({button.get('title')}: {payload})")
    return payload


def _print_message(message: dict[str, Any]) -> None:
    from chatbot.conversation.messages import terminal_lines

    for line in terminal_lines(message):
        click.secho(line, fg="cyan")
