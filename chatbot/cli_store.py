"""Commands on the stored conversations: ``chatbot export`` (a JSON Lines file, or the event
broker), ``chatbot import`` and ``chatbot evaluate markers`` (joined to
``chatbot.cli_common.main`` by ``chatbot.cli``)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from chatbot.cli_common import (
    Number,
    _load_project,
    debug_option,
    main,
    project_option,
    refuse_existing,
    user_errors,
)
from chatbot.errors import ChatbotError
from chatbot.ranges import whole_number


def _store_for(project_dir: Path, endpoints_path: Path | None = None) -> Any:
    """The conversation store the project's endpoints.yml (or ``endpoints_path``) names, as
    ``chatbot run`` uses it."""
    from chatbot.server.app import read_endpoints
    from chatbot.store.factory import create_store

    endpoints = read_endpoints(project_dir, _endpoints_file(endpoints_path))
    default = project_dir / ".chatbot" / "conversations.db"
    return create_store(endpoints.tracker_store, default_sqlite_path=default)


def _endpoints_file(path: Path | None) -> Path | None:
    if path is not None and not path.is_file():
        raise ChatbotError(f"--endpoints {path}: no such file")
    return path


_endpoints_option = click.option(
    "--endpoints",
    "endpoints_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The store and the event broker (default: the project's endpoints.yml).",
)


@main.command(name="export")
@debug_option
@project_option
@_endpoints_option
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON Lines file to write (never overwritten). Without it, the events are published "
    "to endpoints.yml's event_broker, as Rasa's `rasa export`.",
)
@click.option(
    "--conversation",
    "conversation_ids",
    multiple=True,
    help="Only these conversation ids (repeatable).",
)
@click.option(
    "--conversation-ids",
    "conversation_list",
    default=None,
    help="Only these conversation ids, comma-separated (Rasa's option).",
)
@click.option(
    "--minimum-timestamp",
    type=Number(),
    default=None,
    help="To the event broker: only events at or after this time (seconds since 1970).",
)
@click.option(
    "--maximum-timestamp",
    type=Number(),
    default=None,
    help="To the event broker: only events at or before this time (seconds since 1970).",
)
@click.option(
    "--offset-timestamps-by-seconds",
    type=Number(),
    default=None,
    help="To the event broker: every event's timestamp moved by this many seconds (Rasa's).",
)
@click.option(
    "--timeout",
    type=Number(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="To the event broker: give up when nothing is published for this long (seconds).",
)
@user_errors
def export_command(
    project_dir: Path,
    endpoints_path: Path | None,
    out: Path | None,
    conversation_ids: tuple[str, ...],
    conversation_list: str | None,
    minimum_timestamp: float | None,
    maximum_timestamp: float | None,
    offset_timestamps_by_seconds: float | None,
    timeout: float,
) -> None:
    """Write stored conversations to a JSON Lines file (one conversation per line), or publish
    their events to the event broker of endpoints.yml (Rasa's `rasa export`)."""
    listed = (c.strip() for c in (conversation_list or "").split(","))
    ids = [*conversation_ids, *(c for c in listed if c)]
    if out is not None:
        if (minimum_timestamp, maximum_timestamp, offset_timestamps_by_seconds) != (None,) * 3:
            raise ChatbotError(
                "--minimum-timestamp, --maximum-timestamp and --offset-timestamps-by-seconds are "
                "for the event broker; a JSON Lines export holds whole conversations as stored "
                "(leave out --out)"
            )
        refuse_existing(out)
        from chatbot.store.jsonl import export_jsonl

        async def run_export() -> int:
            async with _store_for(project_dir, endpoints_path) as store:
                return await export_jsonl(store, out, ids or None)

        count = asyncio.run(run_export())
        click.echo(f"Exported {count} conversation(s) to {out}")
        return
    if (
        minimum_timestamp is not None
        and maximum_timestamp is not None
        and minimum_timestamp > maximum_timestamp
    ):
        raise ChatbotError("--minimum-timestamp is after --maximum-timestamp: nothing to export")
    times = (minimum_timestamp, maximum_timestamp, offset_timestamps_by_seconds or 0.0)
    _publish(project_dir, endpoints_path, ids or None, times, timeout)


def _publish(
    project_dir: Path,
    endpoints_path: Path | None,
    ids: list[str] | None,
    times: tuple[float | None, float | None, float],
    timeout: float,
) -> None:
    from chatbot.server.app import read_endpoints
    from chatbot.store.broker import create_event_broker, publish_stored

    since, until, offset = times
    endpoints = read_endpoints(project_dir, _endpoints_file(endpoints_path))
    block = endpoints.get("event_broker")
    broker = create_event_broker(block)
    if broker is None:
        where = block.origin.prefix if block is not None else f"{project_dir / 'endpoints.yml'}: "
        raise ChatbotError(
            f"{where}no event broker to export to (an event_broker: block of type pika or sql); "
            "or give --out FILE for a JSON Lines file"
        )

    async def run() -> tuple[int, int]:
        try:
            async with _store_for(project_dir, endpoints_path) as store:
                return await publish_stored(
                    broker, store, ids, since=since, until=until, offset=offset,
                    stall_seconds=timeout,
                )  # fmt: skip
        finally:
            await broker.close()

    conversations, events = asyncio.run(run())
    click.echo(
        f"Published {broker.published} event(s) of {conversations} conversation(s) to "
        f"{broker.describe()}"
    )
    if broker.published != events:
        click.secho(f"error: {events - broker.published} event(s) not published", err=True)
        sys.exit(1)


@main.command(name="import")
@debug_option
@project_option
@_endpoints_option
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@user_errors
def import_command(project_dir: Path, endpoints_path: Path | None, source: Path) -> None:
    """Append the conversations of a JSON Lines file to the store (existing ids are left alone)."""
    from chatbot.store.jsonl import import_jsonl

    async def run_import() -> Any:
        async with _store_for(project_dir, endpoints_path) as store:
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


@main.group()
def evaluate() -> None:
    """Evaluate stored conversations (Rasa's `rasa evaluate`)."""


@evaluate.command(name="markers")
@debug_option
@project_option
@click.argument("strategy", type=click.Choice(["all", "first_n", "sample_n"]))
@click.argument("arguments", nargs=-1, metavar="[N] OUTPUT.csv")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The markers: a file, or a folder of them (default: the project's markers.yml).",
)
@click.option(
    "--stats-file-prefix",
    default="stats",
    show_default=True,
    help="Statistics go to <prefix>-overall.csv and <prefix>-per-session.csv beside the output.",
)
@click.option("--no-stats", is_flag=True, help="Write no statistics.")
@click.option("--seed", type=int, default=None, help="The seed of sample_n's sample.")
@user_errors
def evaluate_markers(
    project_dir: Path,
    strategy: str,
    arguments: tuple[str, ...],
    config_path: Path | None,
    stats_file_prefix: str,
    no_stats: bool,
    seed: int | None,
) -> None:
    """Find where the markers apply in the stored conversations (Rasa's `rasa evaluate
    markers all OUTPUT.csv`, `first_n N OUTPUT.csv`, `sample_n N OUTPUT.csv`): one row per
    event where a marker applies, and statistics per session and overall."""
    import random

    from training.markers import (
        domain_problems,
        evaluate,
        load_markers,
        write_results,
        write_statistics,
    )

    wanted = 1 if strategy == "all" else 2
    if len(arguments) != wanted:
        usage = "all OUTPUT.csv" if strategy == "all" else f"{strategy} N OUTPUT.csv"
        raise ChatbotError(f"expected `chatbot evaluate markers {usage}`")
    count = None
    if strategy != "all":
        count = whole_number(arguments[0])
        if count is None or count < 1:
            raise ChatbotError(f"{strategy} takes a number of conversations, not {arguments[0]!r}")
    output = Path(arguments[-1])
    overall = output.parent / f"{stats_file_prefix}-overall.csv"
    per_session = output.parent / f"{stats_file_prefix}-per-session.csv"
    for path in [output] if no_stats else [output, overall, per_session]:
        refuse_existing(path, "another name")
    if not output.parent.is_dir():
        raise ChatbotError(f"no folder {output.parent} for {output.name}")
    project = _load_project(project_dir)
    markers = load_markers(config_path or project_dir / "markers.yml")
    problems = domain_problems(markers, project.domain)
    if problems:
        raise ChatbotError("; ".join(problems))

    async def run() -> dict[str, list[Any]]:
        async with _store_for(project_dir) as store:
            ids = list(await store.conversation_ids())
            if strategy == "first_n":
                ids = ids[:count]
            elif strategy == "sample_n":
                ids = random.Random(seed).sample(ids, min(count or 0, len(ids)))
            found = {}
            for conversation_id in ids:
                stored = await store.load(conversation_id, all_sessions=True)
                found[conversation_id] = evaluate(markers, stored.events)
            return found

    results = asyncio.run(run())
    rows = write_results(output, results)
    sessions = sum(len(s) for s in results.values())
    click.echo(
        f"{len(markers)} markers over {len(results)} conversations ({sessions} sessions): "
        f"{rows} events where one applies, written to {output}"
    )
    if not no_stats:
        write_statistics(results, [str(m) for m in markers], overall, per_session)
        click.echo(f"Statistics written to {overall} and {per_session}")
