"""The ``chatbot`` command (also ``python -m chatbot``). A composition root: it may import
``training`` and ``connectors``, lazily, so that serving a model never loads the trainers."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from chatbot.errors import ChatbotError

logger = logging.getLogger("chatbot")
F = TypeVar("F", bound=Callable[..., Any])

STARTER = Path(__file__).parent / "project" / "starter"


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
        stream=sys.stderr,
    )
    for noisy in ("asyncio", "aiohttp.access", "sanic", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def user_errors(func: F) -> F:
    """Print a user's mistake as one clear message and exit 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ChatbotError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


project_option = click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The bot project folder (domain.yml, data/, config.yml, ...).",
)
model_option = click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A trained model file (default: the newest in the project's models/).",
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="chatbot")
def main(verbose: bool) -> None:
    """Train and serve chatbots from Rasa 3.x style projects."""
    _configure_logging(verbose)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@user_errors
def init(directory: Path) -> None:
    """Write a small working starter bot into DIRECTORY."""
    if directory.exists() and any(directory.iterdir()):
        raise ChatbotError(f"{directory} is not empty; choose a new folder")
    shutil.copytree(
        STARTER, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    click.echo(f"Created a starter bot in {directory}. Next: chatbot train --project {directory}")


def _load_project(project_dir: Path) -> Any:
    """The project, validated: every problem of every file is reported before anything runs."""
    from chatbot.errors import ProjectErrors
    from chatbot.project.loader import check_project

    project, problems = check_project(project_dir)
    if problems:
        raise ProjectErrors(problems)
    return project


def _default_model_path(project_dir: Path) -> Path:
    return project_dir / "models" / time.strftime("%Y%m%d-%H%M%S.model")


def _load_model(project_dir: Path, model_path: Path | None) -> Any:
    """The model to answer with (served in numpy: torch is not imported)."""
    from chatbot.agent import TrainedModel, latest_model

    path = model_path or latest_model(project_dir / "models")
    return TrainedModel.from_file(path)


results_option = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="The folder the reports are written to.",
)


@main.command()
@project_option
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the model file.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def train(project_dir: Path, out: Path | None, seed: int, quiet: bool) -> None:
    """Train the project's NLU and dialogue models into one model file."""
    from training.train import train_to_file

    project = _load_project(project_dir)
    out = out or _default_model_path(project_dir)
    started = time.perf_counter()
    train_to_file(project, out, seed=seed, show_progress=not quiet)
    click.echo(f"Trained model saved to {out} in {time.perf_counter() - started:.1f}s")


@main.group(invoke_without_command=True)
@project_option
@model_option
@click.option("--sender", default="shell", show_default=True, help="Conversation id.")
@click.pass_context
@user_errors
def shell(ctx: click.Context, project_dir: Path, model_path: Path | None, sender: str) -> None:
    """Talk to the bot in the terminal (/stop or Ctrl-D to leave; `chatbot shell nlu`: see what
    the NLU makes of each message)."""
    if ctx.invoked_subcommand is not None:  # `chatbot shell --project X nlu`: X holds for nlu
        ctx.obj = {"project_dir": project_dir, "model_path": model_path}
        return
    from chatbot.actions.endpoint import create_action_executor
    from chatbot.agent import Agent
    from chatbot.server.app import read_endpoints

    endpoints = read_endpoints(project_dir)
    executor = create_action_executor(endpoints.action_endpoint, project_dir)
    agent = Agent(_load_model(project_dir, model_path), action_executor=executor)
    click.echo("Bot loaded. Type a message and press enter (/stop to exit).")

    async def talk() -> None:
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
            for message in await agent.handle_text(text, sender, input_channel="cmdline"):
                _print_message(message)

    asyncio.run(talk())


@shell.command(name="nlu")
@project_option
@model_option
@click.pass_context
@user_errors
def shell_nlu(ctx: click.Context, project_dir: Path, model_path: Path | None) -> None:
    """Type messages and see the NLU's parse of each as JSON (Rasa's `rasa shell nlu`)."""
    earlier = ctx.obj or {}
    if ctx.get_parameter_source("project_dir") == click.core.ParameterSource.DEFAULT:
        project_dir = earlier.get("project_dir", project_dir)
    if model_path is None:
        model_path = earlier.get("model_path")
    model = _load_model(project_dir, model_path)
    click.echo("NLU model loaded. Type a message and press enter to parse it (/stop to exit).")

    async def parse() -> None:
        while True:
            try:
                text = await asyncio.to_thread(input, "Next message: ")
            except EOFError:
                return
            if text.strip() in ("/stop", "/exit", "/quit"):
                return
            if text.strip():
                click.echo(json.dumps(await model.parse(text), indent=2, ensure_ascii=False))

    asyncio.run(parse())


def _print_message(message: dict[str, Any]) -> None:
    if message.get("text"):
        click.secho(message["text"], fg="cyan")
    for i, button in enumerate(message.get("buttons") or message.get("quick_replies") or [], 1):
        click.secho(f"  {i}: {button.get('title')} ({button.get('payload')})", fg="cyan")
    if message.get("image"):
        click.secho(f"  Image: {message['image']}", fg="cyan")
    if message.get("custom"):
        click.secho(f"  Custom: {message['custom']}", fg="cyan")
    if message.get("attachment"):
        click.secho(f"  Attachment: {message['attachment']}", fg="cyan")


@main.command()
@project_option
@model_option
@click.option("-i", "--host", "--interface", "host", default="0.0.0.0", show_default=True)
@click.option("-p", "--port", type=int, default=5005, show_default=True)
@click.option(
    "--credentials",
    "credentials_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The channels to mount (default: the project's credentials.yml; REST only without one).",
)
@click.option(
    "--endpoints",
    "endpoints_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Action server, stores and locks (default: the project's endpoints.yml).",
)
@click.option(
    "--enable-api", is_flag=True, help="Serve the HTTP API (/conversations, /model, ...)."
)
@click.option(
    "-t",
    "--auth-token",
    default=None,
    envvar="CHATBOT_AUTH_TOKEN",
    help="A token the API requires (Bearer or ?token=); or $CHATBOT_AUTH_TOKEN.",
)
@click.option(
    "--jwt-secret",
    default=None,
    envvar="CHATBOT_JWT_SECRET",
    help="The secret (or public key) of API JWTs; or $CHATBOT_JWT_SECRET.",
)
@click.option("--jwt-method", default="HS256", show_default=True, help="The JWT algorithm.")
@click.option("--cors", multiple=True, help="An origin browsers may call from ('*': any).")
@click.option(
    "--rate-limit",
    default="60/min",
    show_default=True,
    help="Messages per sender, e.g. 30/min, 5/s, 100/10s; 'off' for none.",
)
@click.option(
    "--max-body-size",
    type=int,
    default=1024 * 1024,
    show_default=True,
    help="Largest request body in bytes.",
)
@click.option(
    "--max-message-length",
    type=int,
    default=10_000,
    show_default=True,
    help="Longest user message in characters.",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds SIGTERM waits for messages in flight.",
)
@user_errors
def run(
    project_dir: Path,
    model_path: Path | None,
    host: str,
    port: int,
    credentials_path: Path | None,
    endpoints_path: Path | None,
    enable_api: bool,
    auth_token: str | None,
    jwt_secret: str | None,
    jwt_method: str,
    cors: tuple[str, ...],
    rate_limit: str,
    max_body_size: int,
    max_message_length: int,
    shutdown_timeout: float,
) -> None:
    """Serve the bot over HTTP (REST channel at /webhooks/rest/webhook)."""
    from chatbot.server.app import serve
    from chatbot.server.settings import RateLimit, ServerSettings

    settings = ServerSettings(
        project_dir=project_dir,
        model_path=model_path,
        host=host,
        port=port,
        credentials_path=credentials_path,
        endpoints_path=endpoints_path,
        enable_api=enable_api,
        auth_token=auth_token,
        jwt_secret=jwt_secret,
        jwt_method=jwt_method,
        cors=cors,
        rate_limit=RateLimit.parse(rate_limit),
        max_body_bytes=max_body_size,
        max_message_chars=max_message_length,
        shutdown_timeout=shutdown_timeout,
        # Without its database the bot would only apologise: say so and exit instead.
        require_store_at_start=True,
    )
    serve(settings)


@main.group(invoke_without_command=True)
@project_option
@model_option
@click.option(
    "--stories",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Test stories file or folder (default: the project's tests/).",
)
@results_option
@click.pass_context
@user_errors
def test(
    ctx: click.Context,
    project_dir: Path,
    model_path: Path | None,
    stories: Path | None,
    out_dir: Path,
) -> None:
    """Test the dialogue model and the NLU on test stories (`chatbot test nlu`: the NLU alone)."""
    if ctx.invoked_subcommand is not None:  # `chatbot test --project X nlu`: X holds for nlu
        ctx.obj = {"project_dir": project_dir, "model_path": model_path, "out_dir": out_dir}
        return
    from training.evaluate import evaluate_stories, write_reports

    model = _load_model(project_dir, model_path)
    test_stories = _test_stories(project_dir, stories)
    if not test_stories:
        folder = stories or project_dir / "tests"
        files = sorted(folder.glob("test_*.y*ml")) if folder.is_dir() else []
        held = (
            f": {', '.join(f.name for f in files)} hold no 'stories:' or 'rules:'"
            if files
            else " (files test_*.yml)"
        )
        raise ChatbotError(f"no test stories found in {folder}{held}")
    evaluation = evaluate_stories(model, test_stories)
    write_reports(evaluation, out_dir)
    click.echo(f"Action-level accuracy: {evaluation.action_accuracy:.3f}")
    click.echo(
        f"Conversation accuracy: {evaluation.conversation_accuracy:.3f} "
        f"({sum(r.passed for r in evaluation.results)}/{len(evaluation.results)} stories)"
    )
    _test_stories_nlu(model, test_stories, out_dir)
    click.echo(f"Reports written to {out_dir}")
    if evaluation.conversation_accuracy < 1.0:
        sys.exit(1)


def _test_stories_nlu(model: Any, stories: list[Any], out_dir: Path) -> None:
    """The NLU part of ``chatbot test``: the NLU model on the test stories' user texts."""
    from chatbot.nlu.model import NLUModel
    from training.nlu.evaluate import evaluate_nlu, examples_of_stories

    examples = examples_of_stories(stories)
    if not isinstance(model.nlu, NLUModel) or not examples:
        click.echo("NLU: no user texts with intents in the test stories, or no NLU model; skipped")
        return
    _echo_nlu_summary(evaluate_nlu(model.nlu, examples, out_dir), "the test stories' user messages")


def _echo_nlu_summary(summary: dict[str, Any], what: str) -> None:
    intent = summary["intent"]
    click.echo(
        f"NLU on {what} ({summary['examples']}): intent accuracy {intent['accuracy']:.3f}, "
        f"macro F1 {intent['macro_f1']:.3f}"
    )
    for name, scores in summary.get("entities", {}).items():
        if scores.get("support"):
            click.echo(
                f"  entities ({name}): span F1 {scores['span_f1']:.3f} "
                f"(precision {scores['span_precision']:.3f}, recall {scores['span_recall']:.3f}, "
                f"{scores['support']} entities)"
            )


@test.command(name="nlu")
@project_option
@model_option
@click.option(
    "--nlu",
    "nlu_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="NLU test data, a file or folder: the model (--model, else the newest) is scored on it. "
    "Without it, the project's NLU data is split 80/20 and a model trained on the 80.",
)
@click.option(
    "-f",
    "--folds",
    type=click.IntRange(min=2),
    default=None,
    help="Cross-validate in N folds instead (the project's NLU data, or --nlu's).",
)
@click.option(
    "--cross-validation",
    is_flag=True,
    help="Rasa's flag: cross-validate (in --folds folds, 5 if not given).",
)
@click.option(
    "--test-share",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of each intent's examples held out by the split.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@results_option
@click.pass_context
@user_errors
def test_nlu(
    ctx: click.Context,
    project_dir: Path,
    model_path: Path | None,
    nlu_path: Path | None,
    folds: int | None,
    cross_validation: bool,
    test_share: float,
    seed: int,
    out_dir: Path,
) -> None:
    """Test the NLU model: intent and entity reports, confusion matrix, confidence histogram."""
    from chatbot.nlu.model import NLUModel
    from training.nlu.evaluate import cross_validate, evaluate_nlu, split_evaluate

    earlier = ctx.obj or {}  # options given to `chatbot test` before `nlu`

    def given(name: str, value: Any) -> Any:
        unset = ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT
        return earlier[name] if unset and name in earlier else value

    project_dir = given("project_dir", project_dir)
    model_path = given("model_path", model_path)
    out_dir = given("out_dir", out_dir)
    if cross_validation and folds is None:
        folds = 5
    if folds is not None or nlu_path is None:
        project = _load_project(project_dir)
        data = _read_nlu_data(nlu_path) if nlu_path is not None else project.nlu
        if not data.examples:
            raise ChatbotError(f"no NLU examples in {nlu_path or project_dir}")
        if folds is not None:
            click.echo(f"Cross-validating {len(data.examples)} examples in {folds} folds ...")
            result = cross_validate(data, project.config.pipeline, folds, out_dir, seed=seed)
            pooled: dict[str, Any] = dict(result["pooled"])  # type: ignore[call-overload]
            _echo_nlu_summary(pooled, f"the held-out examples of {folds} folds")
        else:
            click.echo(
                f"Holding out {test_share:.0%} of each intent's examples, training on the rest ..."
            )
            summary = split_evaluate(
                data, project.config.pipeline, out_dir, test_share=test_share, seed=seed
            )
            click.echo(
                f"Trained on {summary['train_examples']} examples (the split's training part)"
            )
            _echo_nlu_summary(summary, "the held-out examples")
    else:
        model = _load_model(project_dir, model_path)
        if not isinstance(model.nlu, NLUModel):
            raise ChatbotError("the model has no NLU model to test (the project has no NLU data)")
        examples = _read_nlu_data(nlu_path).examples
        if not examples:
            raise ChatbotError(f"no NLU examples in {nlu_path}")
        _echo_nlu_summary(evaluate_nlu(model.nlu, examples, out_dir), f"the examples of {nlu_path}")
    click.echo(f"Reports written to {out_dir}")


def _read_nlu_data(path: Path) -> Any:
    """The ``nlu:`` parts of a YAML file, or of every YAML file in a folder."""
    from chatbot.project.nlu_reader import read_nlu
    from chatbot.project.training_data import NLUData

    files = sorted([*path.rglob("*.yml"), *path.rglob("*.yaml")]) if path.is_dir() else [path]
    data = NLUData()
    for file in files:
        part = read_nlu(file, base_dirs=[file.parent])
        data.examples.extend(part.examples)
        data.synonyms.update(part.synonyms)
        data.regexes.extend(part.regexes)
        data.lookups.extend(part.lookups)
    return data


def _test_stories(project_dir: Path, stories: Path | None) -> list[Any]:
    """The project's test stories, or those in a file or folder given with --stories."""
    from chatbot.project.story_reader import read_stories

    if stories is None:
        return list(_load_project(project_dir).test_stories)
    if stories.is_dir():
        files = sorted([*stories.rglob("*.yml"), *stories.rglob("*.yaml")])
    else:
        files = [stories]
    found: list[Any] = []
    for file in files:
        test_stories, test_rules = read_stories(file, test=True)
        found.extend(test_stories + test_rules)
    return found


@main.group()
def data() -> None:
    """Check and split training data."""


@data.command()
@project_option
def validate(project_dir: Path) -> None:
    """Report every problem of a project at once; exit 1 if there are any."""
    from chatbot.project.loader import check_project

    _, problems = check_project(project_dir)
    for problem in problems:
        click.secho(f"error: {problem}", fg="red", err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) found in {project_dir}", err=True)
        sys.exit(1)
    click.echo(f"{project_dir}: no problems found")


@data.group()
def split() -> None:
    """Split training data into a training and a test part."""


@split.command(name="nlu")
@project_option
@click.option(
    "-u",
    "--nlu",
    "nlu_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="NLU data, a file or folder (default: the project's).",
)
@click.option(
    "--training-fraction",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True, max_open=True),
    default=0.8,
    show_default=True,
    help="Share of each intent's examples that goes to training.",
)
@click.option("--random-seed", type=int, default=42, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("train_test_split"),
    show_default=True,
    help="Folder for training_data.yml and test_data.yml.",
)
@user_errors
def split_nlu(
    project_dir: Path,
    nlu_path: Path | None,
    training_fraction: float,
    random_seed: int,
    out_dir: Path,
) -> None:
    """Split NLU data per intent into training_data.yml and test_data.yml (as Rasa's `rasa data
    split nlu`); synonyms, regexes and lookup tables go to both."""
    from chatbot.project.nlu_writer import nlu_yaml
    from training.nlu.evaluate import split_examples

    data = _read_nlu_data(nlu_path) if nlu_path is not None else _load_project(project_dir).nlu
    if not data.examples:
        raise ChatbotError(f"no NLU examples in {nlu_path or project_dir}")
    train, test = split_examples(data.examples, 1.0 - training_fraction, random_seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "training_data.yml").write_text(nlu_yaml(data, examples=train), encoding="utf-8")
    (out_dir / "test_data.yml").write_text(nlu_yaml(data, examples=test), encoding="utf-8")
    click.echo(f"{len(train)} training and {len(test)} test examples written to {out_dir}")


def _store_for(project_dir: Path) -> Any:
    """The conversation store the project's endpoints.yml names (as ``chatbot run`` uses it)."""
    from chatbot.server.app import read_endpoints
    from chatbot.store.factory import create_store

    endpoints = read_endpoints(project_dir)
    default = project_dir / ".chatbot" / "conversations.db"
    return create_store(endpoints.tracker_store, default_sqlite_path=default)


@main.command(name="export")
@project_option
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON Lines file to write.",
)
@click.option(
    "--conversation",
    "conversation_ids",
    multiple=True,
    help="Only these conversation ids (repeatable).",
)
@user_errors
def export_command(project_dir: Path, out: Path, conversation_ids: tuple[str, ...]) -> None:
    """Write stored conversations to a JSON Lines file (one conversation per line)."""
    from chatbot.store.jsonl import export_jsonl

    async def run_export() -> int:
        async with _store_for(project_dir) as store:
            return await export_jsonl(store, out, conversation_ids or None)

    count = asyncio.run(run_export())
    click.echo(f"Exported {count} conversation(s) to {out}")


@main.command(name="import")
@project_option
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@user_errors
def import_command(project_dir: Path, source: Path) -> None:
    """Append the conversations of a JSON Lines file to the store (existing ids are left alone)."""
    from chatbot.store.jsonl import import_jsonl

    async def run_import() -> Any:
        async with _store_for(project_dir) as store:
            return await import_jsonl(store, source)

    report = asyncio.run(run_import())
    for problem in report.errors:
        click.secho(f"error: {problem}", fg="red", err=True)
    for conversation_id in report.conflicts:
        click.secho(
            f"skipped: conversation {conversation_id!r} is already in the store",
            fg="yellow",
            err=True,
        )
    click.echo(f"Imported {len(report.imported)} conversation(s), {report.events} event(s)")
    if report.errors:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
