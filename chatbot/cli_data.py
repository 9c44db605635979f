"""``chatbot data`` (validate, convert, split, migrate) and ``chatbot visualize``."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from chatbot.cli_common import (
    Number,
    _load_project,
    _read_nlu_data,
    config_option,
    data_option,
    debug_option,
    domain_option,
    main,
    nlu_path_option,
    project_option,
    refuse_existing,
    spaced_command,
    stacked,
    user_errors,
    yaml_files,
)
from chatbot.errors import ChatbotError, ProjectErrors

logger = logging.getLogger(__name__)


@main.group()
def data() -> None:
    """Check, split, convert and migrate training data."""


@data.command(cls=spaced_command(click.Command, {"--data": "repeat"}))
@debug_option
@project_option
@domain_option
@data_option
@config_option
@click.option(
    "--max-history",
    type=click.IntRange(min=1),
    default=None,
    help="Stories that continue the same last N states differently are a problem (Rasa's "
    "story structure check).  [default: the smallest max_history of the config's policies, "
    "else the whole story]",
)
@click.option(
    "--fail-on-warnings",
    is_flag=True,
    help="Warnings (things that train, but look like mistakes) fail the check too (Rasa's).",
)
def validate(
    project_dir: Path,
    domain: Path | None,
    data: tuple[Path, ...],
    config: Path | None,
    max_history: int | None,
    fail_on_warnings: bool,
) -> None:
    """Report every problem of a project at once; exit 1 if there are any (or any warning,
    with --fail-on-warnings)."""
    with counting_warnings() as warnings:
        project, problems = checked_project(project_dir, domain, data, config, max_history)
    if project is not None:
        # Outside the count: Rasa's validator reads neither file, and a block we do not use (a
        # kafka broker) must not fail --fail-on-warnings of a project Rasa's passes.
        problems += endpoint_problems(project)
    for problem in problems:
        click.secho(f"error: {problem}", fg="red", err=True)
    warned = f" and {len(warnings)} warning(s)" if warnings else ""
    if problems or (fail_on_warnings and warnings):
        click.echo(
            f"{len(problems)} problem(s){warned} found in {project_dir}"
            + (" (--fail-on-warnings)" if not problems else ""),
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"{project_dir}: no problems found" + (f" ({len(warnings)} warning(s))" if warnings else "")
    )


class _WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def counting_warnings() -> Iterator[list[logging.LogRecord]]:
    """The warnings logged meanwhile (they are printed as ever)."""
    counter = _WarningCounter()
    root = logging.getLogger()
    root.addHandler(counter)
    try:
        yield counter.records
    finally:
        root.removeHandler(counter)


def validation_problems(
    project_dir: Path,
    domain: Path | None,
    data: tuple[Path, ...],
    config: Path | None,
    max_history: int | None,
) -> list[Any]:
    """The problems of the project's files and settings (``chatbot train`` runs these too)."""
    return checked_project(project_dir, domain, data, config, max_history)[1]


def checked_project(
    project_dir: Path,
    domain: Path | None,
    data: tuple[Path, ...],
    config: Path | None,
    max_history: int | None,
) -> tuple[Any, list[Any]]:
    """(The project, or None where a file of it could not be read; its problems.)"""
    from chatbot.project.loader import check_project

    project, problems = check_project(
        project_dir, domain=domain, data=list(data) if data else None, config=config
    )
    if project is not None:
        from chatbot.errors import ProjectError
        from training.dialogue import (
            check_rule_policy,
            smallest_max_history,
            story_conflicts,
            training_data,
        )
        from training.incomplete_rules import incomplete_rules, long_rules
        from training.rule_conflicts import rule_conflicts
        from training.train import check_config

        try:  # the pipeline's and the policies' settings, as training checks them
            check_config(project)
            check_rule_policy(project)
        except ChatbotError as error:
            problems = [*problems, ProjectError(str(error))]
        from chatbot.project.unused import unused_in_dialogue

        for unused in unused_in_dialogue(project):  # Rasa's validator warns of these too
            logger.warning("%s", unused)
        if not problems:  # stories that contradict each other (the data is sound otherwise)
            history = max_history if max_history is not None else smallest_max_history(project)
            try:  # warnings, as Rasa's story structure check (--fail-on-warnings fails on them)
                dialogue = training_data(project)
                for conflict in story_conflicts(project, history, dialogue):
                    logger.warning("%s", conflict)
                # Steps the rules contradict (Rasa's RulePolicy refuses to train on them).
                for conflict in rule_conflicts(project, dialogue):
                    logger.warning("%s", conflict)
                # Rules that do not say what their actions set (Rasa refuses those too).
                for incomplete in [*incomplete_rules(project), *long_rules(project)]:
                    logger.warning("%s", incomplete)
            except ChatbotError as error:
                problems = [*problems, ProjectError(str(error))]
    return project, list(problems)


def endpoint_problems(project: Any) -> list[Any]:
    """What in endpoints.yml and credentials.yml would stop ``chatbot run`` (an unknown store
    type or channel, a port or URL that is none, a channel without its token), found by
    building what it builds, without connecting to anything. A block that names an unset
    ``${VAR}`` is passed over (a warning says so already: only the running bot needs it), and
    an in-process ``actions_module`` is not imported (its code runs with the bot only)."""
    from chatbot.actions.endpoint import create_action_executor
    from chatbot.actions.nlg import create_nlg_client
    from chatbot.errors import ConfigError, ProjectError
    from chatbot.project.endpoints import EndpointBlock
    from chatbot.server.model_pull import ModelServer
    from chatbot.store.broker import create_event_broker
    from chatbot.store.factory import create_lock_store, create_store
    from connectors.registry import channel_of

    def build_action_executor(block: EndpointBlock) -> None:
        if not block.params.get("actions_module"):
            create_action_executor(block, project.root)

    builders: dict[str, Callable[[EndpointBlock], Any]] = {
        "tracker_store": lambda block: create_store(block, default_sqlite_path=None),
        "lock_store": create_lock_store,
        "action_endpoint": build_action_executor,
        "nlg": create_nlg_client,
        "event_broker": create_event_broker,
        "models": ModelServer.from_block,
    }
    for block, why in project.endpoints.not_used():
        logger.warning("%s%s: %s; the block is ignored", block.origin.prefix, block.name, why)
    checks = [
        (block, builders[name])
        for name, block in project.endpoints.blocks.items()
        if name in builders
    ]
    checks += [(block, channel_of) for block in project.credentials.channels.values()]
    problems = []
    for block, build in checks:
        if _names_unset_variable(block.params):
            continue
        try:
            build(block)
        except ConfigError as error:
            problems.append(ProjectError(str(error)))
        except (ValueError, TypeError) as error:  # a URL the database library cannot parse
            where = f"{block.origin.prefix}{block.name}"
            problems.append(ProjectError(f"{where}: {error}"))
    return problems


def _names_unset_variable(value: Any) -> bool:
    """Whether a ``${VAR}`` is left in ``value`` (its variable was not set when read)."""
    if isinstance(value, dict):
        return any(_names_unset_variable(v) for v in value.values())
    if isinstance(value, list):
        return any(_names_unset_variable(v) for v in value)
    return isinstance(value, str) and "${" in value


@main.command()
@debug_option
@project_option
@domain_option
@data_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("graph.html"),
    show_default=True,
    help="The page to write (a .dot file: Graphviz DOT instead).",
)
@click.option(
    "-s",
    "--stories",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    help="Rasa's name for --data: the stories' files or folders.",
)
@click.option("-c", "--config", "config", default=None, help="Rasa's option, accepted: not needed.")
@click.option(
    "--max-history",
    type=click.IntRange(min=1),
    default=None,
    help="Rasa's option, accepted: stories are merged where they share their whole past.",
)
@click.option("-u", "--nlu", default=None, help="Rasa's option, accepted: the graph names intents.")
@user_errors
def visualize(
    project_dir: Path,
    domain: Path | None,
    data: tuple[Path, ...],
    out: Path,
    stories: tuple[Path, ...],
    config: str | None,
    max_history: int | None,
    nlu: str | None,
) -> None:
    """Draw the project's stories as one graph (Rasa's `rasa visualize`): every path from
    START, shared steps merged, branching where stories part."""
    from training.story_graph import resolve
    from training.visualize import write_graph

    for flag, given in (("--config", config), ("--max-history", max_history), ("--nlu", nlu)):
        if given is not None:
            click.echo(f"{flag}: accepted, not needed here")
    data = (*data, *stories)
    project = _load_project(project_dir, domain=domain, data=data or None)
    if not project.stories:
        raise ChatbotError(f"{project_dir}: no stories to draw (data/*.yml has no 'stories:')")
    counts = write_graph(resolve(project.stories), out, project_dir.resolve().name)
    click.echo(f"{counts['stories']} story paths, {counts['nodes']} nodes: written to {out}")


@data.command()
@debug_option
@project_option
@click.option(
    "-d",
    "--domain",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The Rasa 2 domain, a file or folder (default: the project's domain.yml or domain/).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the migrated domain goes (default: new_domain.yml, or new_domain/ for a "
    "folder, beside it); it must not exist.",
)
@user_errors
def migrate(project_dir: Path, domain: Path | None, out: Path | None) -> None:
    """Rewrite a Rasa 2 domain in Rasa 3's format (Rasa's `rasa data migrate`): forms' slot
    mappings onto the slots with their conditions, auto_fill as from_entity mappings,
    unfeaturized slots as 'any'. The original is left as it is."""
    from chatbot.project.migrate import migrate_domain, write

    if domain is None:
        folder = project_dir / "domain"
        domain = folder if folder.is_dir() else project_dir / "domain.yml"
    migration = migrate_domain(domain, out)
    write(migration)
    for note in migration.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    written = ", ".join(str(p) for p in migration.files)
    click.echo(f"Migrated {domain} to {written}; the original is unchanged")


@data.group()
def convert() -> None:
    """Convert training data between formats."""


@convert.command(name="nlu")
@debug_option
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="NLU data: YAML, Rasa's JSON, or JSON exported from LUIS, Wit.ai or Dialogflow (an "
    "agent's folder); a file or a folder of them.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write; it must not exist.",
)
@click.option(
    "-f",
    "--format",
    "out_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Rasa 3 YAML, or Rasa's JSON.",
)
@click.option(
    "-l",
    "--language",
    default="en",
    show_default=True,
    help="The language of a Dialogflow agent's examples to read (its *_usersays_<language>.json).",
)
@user_errors
def convert_nlu(data_path: Path, out: Path, out_format: str, language: str) -> None:
    """Convert NLU data to YAML or Rasa's JSON (Rasa's `rasa data convert nlu`): examples with
    their entities (roles and groups), synonyms, regexes and lookup tables; from YAML, Rasa's
    JSON, or the JSON of LUIS, Wit.ai or a Dialogflow agent."""
    import json

    from chatbot.project.nlu_json import rasa_json
    from chatbot.project.nlu_reader import read_nlu
    from chatbot.project.nlu_services import FORMATS, is_nlu_json_part, read_json_nlu
    from chatbot.project.nlu_writer import nlu_yaml
    from chatbot.project.training_data import NLUData

    refuse_existing(out)
    files = (
        sorted(p for p in data_path.rglob("*") if p.suffix in (".json", ".yml", ".yaml"))
        if data_path.is_dir()
        else [data_path]
    )
    data = NLUData()
    for file in files:
        if file.suffix == ".json":
            found = read_json_nlu(file, language)
            if found is not None:
                data.merge(found)
            elif not is_nlu_json_part(file):
                message = f"{file}: not NLU training data in a format Rasa reads ({FORMATS})"
                if not data_path.is_dir():
                    raise ChatbotError(message)
                click.echo(f"{message}; skipped", err=True)
        else:
            data.merge(read_nlu(file, base_dirs=[file.parent]))
    if not (data.examples or data.synonyms or data.regexes or data.lookups):
        raise ChatbotError(f"no NLU data in {data_path}")
    if out_format == "json":
        text = json.dumps(rasa_json(data), indent=2, ensure_ascii=False) + "\n"
    else:
        text = nlu_yaml(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"{len(data.examples)} examples written to {out} ({out_format})")


@data.group()
def split() -> None:
    """Split training data into a training and a test part."""


def _split_options(share: str, out: str) -> Callable[[Any], Any]:
    """``--training-fraction``, ``--random-seed`` and ``--out`` of the ``split`` commands."""
    return stacked(
        click.option(
            "--training-fraction",
            type=Number(min=0.0, max=1.0, min_open=True, max_open=True),
            default=0.8,
            show_default=True,
            help=share,
        ),
        click.option("--random-seed", type=int, default=42, show_default=True),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("train_test_split"),
            show_default=True,
            help=out,
        ),
    )


@split.command(name="nlu")
@debug_option
@project_option
@nlu_path_option("NLU data, a file or folder (default: the project's).")
@_split_options(
    "Share of each intent's examples that goes to training.",
    "Folder for training_data.yml and test_data.yml.",
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
    split nlu`); synonyms, regexes and lookup tables go to both, and the responses of the
    retrieval intents each holds (those the training data files define) with them."""
    from chatbot.project.nlu_writer import nlu_yaml
    from training.nlu.evaluate import split_examples

    data = _read_nlu_data(nlu_path) if nlu_path is not None else _load_project(project_dir).nlu
    folder = nlu_path if nlu_path is not None else project_dir / "data"
    responses = _data_file_responses(yaml_files(folder)) if folder.exists() else {}
    if not data.examples:
        raise ChatbotError(f"no NLU examples in {nlu_path or project_dir}")
    train, test = split_examples(data.examples, 1.0 - training_fraction, random_seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in (("training_data.yml", train), ("test_data.yml", test)):
        wanted = {f"utter_{e.intent}" for e in part if "/" in e.intent}
        kept = {k: v for k, v in responses.items() if k in wanted}
        (out_dir / name).write_text(nlu_yaml(data, examples=part, responses=kept), "utf-8")
    click.echo(f"{len(train)} training and {len(test)} test examples written to {out_dir}")


def _data_file_responses(files: Sequence[Path]) -> dict[str, Any]:
    """The ``responses:`` of training data files (Rasa's retrieval intents' answers)."""
    from chatbot.project.domain_reader import domain_parts_from_dict
    from chatbot.project.yaml_io import load_yaml

    found: dict[str, Any] = {}
    for file in files:
        data = load_yaml(file)
        if isinstance(data, dict) and data.get("responses") is not None:
            parts, errors = domain_parts_from_dict(data, str(file), only_responses=True)
            if errors:
                raise ProjectErrors(errors)
            for name, variations in parts.responses.items():
                found.setdefault(name, variations)
    return found


@split.command(name="stories")
@debug_option
@project_option
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Story files, a file or folder (default: the project's data/).",
)
@_split_options(
    "Share of each file's stories that goes to training.",
    "Folder for train_<file> and test_<file> of each story file.",
)
@user_errors
def split_stories(
    project_dir: Path,
    data_path: Path | None,
    training_fraction: float,
    random_seed: int,
    out_dir: Path,
) -> None:
    """Split each story file's stories into train_<file> (with the rest of the file: rules,
    NLU, ...) and test_<file> (the held-out stories, for `chatbot test --stories`), as Rasa's
    `rasa data split stories`."""
    import math
    import random

    from chatbot.project.yaml_io import load_yaml, to_plain

    folder = data_path if data_path is not None else project_dir / "data"
    if not folder.exists():
        raise ChatbotError(f"no training data at {folder}")
    written = 0
    for path in yaml_files(folder):
        content = to_plain(load_yaml(path))  # YAML 1.2, as the project reads it: `yes` is text
        stories = content.get("stories") if isinstance(content, dict) else None
        if not isinstance(stories, list) or not stories:
            continue
        test_count = math.ceil(round(len(stories) * (1.0 - training_fraction), 9))
        test_count = min(test_count, len(stories) - 1)  # training keeps one story at least
        held = set(random.Random(random_seed).sample(range(len(stories)), test_count))
        train = [s for i, s in enumerate(stories) if i not in held]
        test = [s for i, s in enumerate(stories) if i in held]
        out_dir.mkdir(parents=True, exist_ok=True)
        version = {"version": content["version"]} if "version" in content else {}
        _write_yaml(out_dir / f"train_{path.name}", {**content, "stories": train})
        _write_yaml(out_dir / f"test_{path.name}", {**version, "stories": test})
        click.echo(f"{path}: {len(train)} training and {len(test)} test stories")
        written += 1
    if not written:
        raise ChatbotError(f"no stories in {folder} (no YAML file there has 'stories:')")
    click.echo(f"Written to {out_dir}")


def _write_yaml(path: Path, content: dict[str, Any]) -> None:
    import yaml

    text = yaml.safe_dump(content, allow_unicode=True, sort_keys=False, width=100)
    path.write_text(text, encoding="utf-8")
