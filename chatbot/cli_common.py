"""What every ``chatbot`` command shares: the command group, its common options, turning a user's
mistake into one line, and loading a project, a model or NLU data. The commands are in
``chatbot.cli`` (train, shell, run), ``chatbot.cli_eval`` (test) and ``chatbot.cli_data`` (data,
export, import)."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from chatbot import model_file
from chatbot.errors import ChatbotError, ConfigError
from chatbot.log_setup import VERBOSE_FORMAT, configure_logging
from chatbot.server.settings import LogOptions

logger = logging.getLogger("chatbot")
F = TypeVar("F", bound=Callable[..., Any])


def quiet_action_registry() -> None:
    """In the terminal's conversation (shell, interactive), rasa-sdk's line per registered
    action is left out unless debugging: Rasa's shell shows none (its action server, a process
    of its own, prints them); rasa-sdk's warnings stay."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("rasa_sdk.executor").setLevel(logging.WARNING)


def _enable_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)
        for handler in root.handlers:
            handler.setFormatter(logging.Formatter(VERBOSE_FORMAT))
    return value


def _set_level(level: int) -> Callable[[click.Context, click.Parameter, bool], bool]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value:
            logging.getLogger().setLevel(level)
        return value

    return callback


def debug_option(command: F | None = None, *, quiet: bool = True) -> Any:
    """Rasa's logging options of every command: ``-vv``/``--debug`` (``-v`` before the command
    does the same here), ``-v``/``--verbose`` (INFO, the default) and, unless ``quiet`` is
    False (a command with a ``--quiet`` of its own), ``--quiet`` (warnings and errors only).
    ``@debug_option`` or ``@debug_option(quiet=False)``."""
    options = [
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_level(logging.INFO),
            help="Information too: the default (Rasa's -v).",
        ),
        click.option(
            "-vv",
            "--debug",
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_enable_debug,
            help="Debug logging, each turn traced: the NLU's reading, every next action with its "
            "policy and confidence, what it did, the slots (Rasa's -vv / --debug; the same as "
            "`chatbot -v`).",
        ),
    ]
    if quiet:
        options.insert(
            0,
            click.option(
                "--quiet",
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_set_level(logging.WARNING),
                help="Warnings and errors only (Rasa's --quiet).",
            ),
        )

    def apply(target: F) -> F:
        for option in options:
            target = option(target)
        return target

    return apply(command) if command is not None else apply


def line_editing() -> None:
    """Arrow keys and the history of what was typed at the prompts of ``input()``, where the
    input is a terminal (Python's readline module, where the platform has it)."""
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - importing it is what turns it on


def user_errors(func: F) -> F:
    """Print a user's mistake as one clear message and exit 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ChatbotError as exc:
            from chatbot.errors import ProjectErrors

            for problem in exc.errors if isinstance(exc, ProjectErrors) else [exc]:
                click.secho(f"error: {problem}", fg="red", err=True)
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


def spaced(args: list[str], options: dict[str, str], stop: set[str]) -> list[str]:
    """Rasa's options that take several values (argparse's ``nargs``), written its way: the
    values after such an option, up to the next option (or a subcommand's name in ``stop``),
    become repeats of the option (``"repeat"``: ``--config a b`` -> ``--config a --config b``)
    or one value (``"join"``: ``--percentages 0 25 50`` -> ``--percentages "0 25 50"``)."""
    out: list[str] = []
    at = 0
    while at < len(args):
        arg = args[at]
        out.append(arg)
        at += 1
        how = options.get(arg)
        if how is None or at >= len(args):
            continue
        values = [args[at]]
        at += 1
        while at < len(args) and not args[at].startswith("-") and args[at] not in stop:
            values.append(args[at])
            at += 1
        if how == "join":
            out.append(" ".join(values))
            continue
        out.append(values[0])
        for value in values[1:]:
            out += [arg, value]
    return out


def spaced_command(base: type[click.Command], options: dict[str, str]) -> type[click.Command]:
    """A click command (or group) class whose ``options`` take Rasa's space-separated values
    (``spaced``); a group's subcommand names end them."""

    class Spaced(base):  # type: ignore[valid-type,misc]
        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            stop = set(getattr(self, "commands", {}))
            return super().parse_args(ctx, spaced(list(args), options, stop))

    Spaced.__name__ = f"Spaced{base.__name__}"
    return Spaced


class Number(click.FloatRange):
    """click's ``FloatRange`` without NaN, which every bound lets through (its comparisons are
    all false), and without infinity: ``--response-timeout nan`` is a usage error."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number

    def _describe_range(self) -> str:
        """click's help describes a range without bounds as ``[x<=None]``: say nothing."""
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


PORT = click.IntRange(0, 65535)


def refuse_existing(path: Path, choose: str = "another --out") -> None:
    """A file a command writes is never one that is there already: a typo must not replace the
    project's data (``data convert``, ``export``, ``evaluate markers``)."""
    if path.exists():
        raise ChatbotError(f"{path} exists already; remove it or choose {choose}")


def stacked(*options: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator (in the order given, as if written one above the
    other), for option sets that several commands share."""

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


log_options = stacked(
    click.option("--use-syslog", is_flag=True, help="Send the log to a syslog server too."),
    click.option("--syslog-address", default="localhost", show_default=True),
    click.option("--syslog-port", type=PORT, default=514, show_default=True),
    click.option(
        "--syslog-protocol",
        type=click.Choice(["UDP", "TCP"], case_sensitive=False),
        default="UDP",
    ),
    click.option(
        "--logging-config-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Python logging's dictConfig in YAML, as Rasa's.",
    ),
    click.option(
        "--log-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Also append the log to this file, each line with its time.",
    ),
)
LOG_OPTION_NAMES = (
    "use_syslog",
    "syslog_address",
    "syslog_port",
    "syslog_protocol",
    "logging_config_file",
    "log_file",
)


def log_options_of(options: dict[str, Any]) -> LogOptions:
    """``log_options``' values (taken out of ``options``) as ``LogOptions``."""
    use, address, port, protocol, config_file, log_file = (
        options.pop(name) for name in LOG_OPTION_NAMES
    )
    syslog = (address, port, protocol.lower()) if use else None
    return LogOptions(log_file=log_file, syslog=syslog, config_file=config_file)


def _model_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--model FOLDER`` (Rasa's ``-m models``): the newest model file in it."""
    if value is None or not value.is_dir():
        return value
    from chatbot.agent import latest_model
    from chatbot.errors import ModelFileError

    try:
        return latest_model(value)
    except ModelFileError as error:
        raise click.BadParameter(str(error), ctx, param) from None


model_option = click.option(
    "-m",
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    callback=_model_file,
    help="A trained model file, or a folder: its newest (default: the newest in the project's "
    "models/; `chatbot run` prefers the model server of endpoints.yml's models: block, where "
    "there is one).",
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="chatbot")
def main(verbose: bool) -> None:
    """Train and serve chatbots from Rasa 3.x style projects."""
    configure_logging(logging.DEBUG if verbose else logging.INFO)


def _load_project(
    project_dir: Path,
    *,
    domain: Path | None = None,
    data: tuple[Path, ...] | None = None,
    config: Path | None = None,
    training: bool = False,
) -> Any:
    """The project, validated: every problem of every file is reported before anything runs.
    ``domain``, ``data`` and ``config`` (Rasa's --domain, --data, --config) replace the
    project's own files, as given (relative to the working folder). ``training``: for
    ``chatbot train``, which (as Rasa's) trains on the data alone: a test story's problem (a
    file under tests/) is a warning, as long as the rest could be read."""
    from chatbot.errors import ProjectErrors
    from chatbot.project.loader import check_project

    def check(tests: bool = True) -> tuple[Any, list[Any]]:
        listed = list(data) if data else None
        return check_project(project_dir, domain=domain, data=listed, config=config, tests=tests)

    project, problems = check()
    if training:
        in_tests, others = split_test_story_problems(project_dir, problems, data or ())
        if project is None and in_tests and not others:  # a test file that could not be read
            project, problems = check(tests=False)
        else:
            problems = others
        for problem in in_tests:
            logger.warning("%s (a test story, which training does not read)", problem)
    if problems:
        raise ProjectErrors(problems)
    return project


def split_test_story_problems(
    project_dir: Path, problems: list[Any], data: tuple[Path, ...]
) -> tuple[list[Any], list[Any]]:
    """``problems`` split in two: those of the project's test story files (under tests/), which
    training does not read, and the others. All are others where ``data`` (--data) names a file
    or folder under tests/."""
    tests = (project_dir / "tests").resolve()

    def under_tests(file: str | Path) -> bool:
        return Path(file).resolve().is_relative_to(tests)

    if any(under_tests(path) for path in data):
        return [], list(problems)
    in_tests: list[Any] = []
    others: list[Any] = []
    for problem in problems:
        file = getattr(problem, "file", None)
        (in_tests if file and under_tests(file) else others).append(problem)
    return in_tests, others


def model_file_path(project_dir: Path, out: str | None, fixed_name: str | None) -> Path:
    """Where ``chatbot train`` writes. ``out`` is a folder, as Rasa's ``--out models``: one that
    exists, a name ending in a slash, or any other name that does not end in ``.model`` (made
    where missing); the project's ``models/`` when not given. The model is ``<fixed_name>.model``
    or ``<time>.model`` in it. An ``out`` ending in ``.model`` is that file. A file that is there
    and is not a chatbot model (the project's data, say) is never overwritten."""
    if out is not None and out.endswith(model_file.SUFFIX) and not Path(out).is_dir():
        if fixed_name is not None:
            raise ConfigError(
                f"--fixed-model-name {fixed_name!r} with --out {out}, a file: give --out a folder"
            )
        return _writable_model_path(Path(out))
    folder = Path(out) if out is not None else project_dir / "models"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"--out {folder} is a file, not a folder (--out names a folder, as Rasa's, unless "
            f"it ends in {model_file.SUFFIX}); it is not overwritten. Give a folder, or a file "
            f"name ending in {model_file.SUFFIX}"
        )
    if fixed_name is None:
        return model_file.new_model_path(folder)
    name = fixed_name.strip()
    if not name or Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"--fixed-model-name {fixed_name!r}: a file name, without folders")
    suffixed = name if name.endswith(model_file.SUFFIX) else f"{name}{model_file.SUFFIX}"
    return _writable_model_path(folder / suffixed)


def _writable_model_path(path: Path) -> Path:
    """``path``, where nothing is there or a chatbot model file is (a training again replaces
    it); anything else there is named in a ``ConfigError``, not overwritten."""
    if path.exists() and not model_file.is_model_file(path):
        raise ConfigError(
            f"{path} is there and is not a chatbot model file; it is not overwritten. Give "
            f"--out a folder, or a new file name ending in {model_file.SUFFIX}"
        )
    return path


domain_option = click.option(
    "-d",
    "--domain",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The domain: a file or a folder of them (default: the project's domain.yml or domain/).",
)
data_option = click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    help="Training data files or folders, instead of the project's data/ (repeatable).",
)
config_option = click.option(
    "-c",
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The pipeline and policies (default: the project's config.yml).",
)


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


def yaml_files(path: Path) -> list[Path]:
    """The YAML files of a folder (recursively, sorted), or the file itself."""
    if path.is_dir():
        return sorted([*path.rglob("*.yml"), *path.rglob("*.yaml")])
    return [path]


def _read_nlu_data(path: Path) -> Any:
    """The ``nlu:`` parts of a YAML file, or of every YAML file in a folder; and NLU data in
    JSON (Rasa's, LUIS', Wit.ai's, Dialogflow's), as Rasa reads it."""
    from chatbot.project.nlu_reader import read_nlu
    from chatbot.project.nlu_services import read_json_nlu
    from chatbot.project.training_data import NLUData

    data = NLUData()
    files = [*yaml_files(path), *sorted(path.rglob("*.json"))] if path.is_dir() else [path]
    for file in files:
        if file.suffix == ".json":
            found = read_json_nlu(file)
            if found is not None:
                data.merge(found)
        else:
            data.merge(read_nlu(file, base_dirs=[file.parent]))
    return data


def from_parent(ctx: click.Context, name: str, value: Any) -> Any:
    """An option of a subcommand, or where it was left at its default, the parent command's
    (``chatbot test --project X nlu``: X holds for ``nlu``; the parent puts its options in
    ``ctx.obj``)."""
    earlier = ctx.obj or {}
    unset = ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT
    return earlier[name] if unset and name in earlier else value


def nlu_path_option(help: str) -> Callable[[Any], Any]:
    return click.option(
        "-u",
        "--nlu",
        "nlu_path",
        type=click.Path(exists=True, path_type=Path),
        default=None,
        help=help,
    )
