"""``chatbot shell``, ``chatbot shell nlu`` and ``chatbot interactive``: talking to a trained bot
in the terminal (joined to ``chatbot.cli_common.main`` by ``chatbot.cli``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from chatbot.cli_common import (
    _load_model,
    _load_project,
    debug_option,
    from_parent,
    line_editing,
    main,
    model_file_path,
    model_option,
    project_option,
    user_errors,
)
from chatbot.errors import ModelFileError

_endpoints_option = click.option(
    "--endpoints",
    "endpoints_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The action server and stores to use (Rasa's --endpoints; default: the project's "
    "endpoints.yml).",
)


def _sender_option(default: str) -> Callable[[Any], Any]:
    return click.option(
        "--sender",
        "--conversation-id",
        "sender",
        default=default,
        show_default=True,
        help="Conversation id (Rasa's --conversation-id).",
    )


@main.group(invoke_without_command=True)
@project_option
@model_option
@_sender_option("shell")
@_endpoints_option
@debug_option
@click.pass_context
@user_errors
def shell(
    ctx: click.Context,
    project_dir: Path,
    model_path: Path | None,
    sender: str,
    endpoints_path: Path | None,
) -> None:
    """Talk to the bot in the terminal (/stop or Ctrl-D to leave; `chatbot shell nlu`: see what
    the NLU makes of each message)."""
    if ctx.invoked_subcommand is not None:  # `chatbot shell --project X nlu`: X holds for nlu
        ctx.obj = {"project_dir": project_dir, "model_path": model_path}
        return
    from chatbot.actions.endpoint import create_action_executor
    from chatbot.agent import Agent
    from chatbot.server.app import read_endpoints

    endpoints = read_endpoints(project_dir, endpoints_path)
    executor = create_action_executor(endpoints.action_endpoint, project_dir)
    agent = Agent(_load_model(project_dir, model_path), action_executor=executor)
    click.echo("Bot loaded. Type a message and press enter (/stop to exit).")
    if not agent.model.policies:
        click.echo(
            "This model has no dialogue policies (`chatbot train nlu`): the bot does not "
            "answer. `chatbot shell nlu` shows what the NLU makes of each message."
        )

    line_editing()

    async def talk() -> None:
        buttons: list[Any] = []  # the last buttons shown: a number typed is one of them
        try:
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
        finally:
            await agent.close()

    asyncio.run(talk())


@main.command()
@project_option
@model_option
@_sender_option("interactive")
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
    from chatbot.actions.endpoint import create_action_executor
    from chatbot.agent import Agent, TrainedModel, latest_model
    from chatbot.interactive import InteractiveSession
    from chatbot.server.app import read_endpoints

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
    endpoints = read_endpoints(project_dir, endpoints_path)
    executor = create_action_executor(endpoints.action_endpoint, project_dir)
    agent = Agent(TrainedModel.from_file(model_path), action_executor=executor)
    names = ("domain.yml", "domain.yaml", "domain")  # where new intents are exported to
    domain_path = next((p for p in (project_dir / n for n in names) if p.exists()), None)

    line_editing()

    async def ask(prompt: str) -> str:
        return await asyncio.to_thread(input, prompt)

    async def learn() -> None:
        session = InteractiveSession(
            agent, project_dir / "data", ask, click.echo, sender, domain_path=domain_path
        )
        try:
            await session.run()
        finally:
            await agent.close()

    asyncio.run(learn())


@shell.command(name="nlu")
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
    if not (text.isdigit() and 1 <= int(text) <= len(buttons)):
        return text
    button = buttons[int(text) - 1]
    payload = button.get("payload") if isinstance(button, dict) else None
    if not isinstance(payload, str) or not payload:
        return text
    click.echo(f"  ({button.get('title')}: {payload})")
    return payload


def _print_message(message: dict[str, Any]) -> None:
    from chatbot.conversation.messages import terminal_lines

    for line in terminal_lines(message):
        click.secho(line, fg="cyan")
