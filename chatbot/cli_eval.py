"""``chatbot test`` and ``chatbot test nlu``: the dialogue and NLU models on test data."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from chatbot.cli_common import (
    Number,
    _load_model,
    _load_project,
    _read_nlu_data,
    debug_option,
    domain_option,
    from_parent,
    main,
    model_option,
    nlu_path_option,
    project_option,
    results_option,
    spaced_command,
    stacked,
    user_errors,
    yaml_files,
)
from chatbot.errors import ChatbotError


def _comparison_options(config_help: str, percentages: str, data: str) -> Any:
    """``--config`` (repeatable), ``--runs`` and ``--percentages`` of Rasa's comparison mode."""
    return stacked(
        click.option(
            "-c",
            "--config",
            "configs",
            multiple=True,
            help=f"{config_help} (Rasa's comparison mode: --config a.yml b.yml; or repeat the "
            "option, or separate the files with commas).",
        ),
        click.option(
            "--runs",
            type=click.IntRange(min=1),
            default=3,
            show_default=True,
            help="Comparing configs: the runs, each leaving out a draw of its own.",
        ),
        click.option(
            "--percentages",
            default=percentages,
            show_default=True,
            help=f"Comparing configs: the shares of the {data} left out, in percent (commas or "
            "spaces).",
        ),
    )


_report_options = stacked(
    click.option(
        "--successes",
        is_flag=True,
        help="Also write what was predicted right (successful_test_stories.yml; "
        "intent_successes.json).",
    ),
    click.option(
        "--no-errors",
        is_flag=True,
        help="Do not write what was predicted wrong (failed_test_stories.yml; *_errors.json).",
    ),
    click.option(
        "--no-plot", is_flag=True, help="Do not draw the confusion matrices and histograms."
    ),
)
_REPORT_NAMES = ("successes", "no_errors", "no_plot")


def _options(flags: dict[str, Any]) -> Any:
    from training.nlu.evaluate import ReportOptions

    return ReportOptions(
        successes=bool(flags["successes"]),
        errors=not flags["no_errors"],
        plots=not flags["no_plot"],
    )


# Rasa writes `--config a.yml b.yml --percentages 0 25 50`.
_SPACED = {"--config": "repeat", "-c": "repeat", "--percentages": "join"}


def _story_options(e2e_help: str) -> Any:
    """The options of ``chatbot test`` and ``chatbot test core`` (Rasa's)."""
    return stacked(
        project_option,
        model_option,
        click.option(
            "-s",
            "--stories",
            type=click.Path(exists=True, path_type=Path),
            default=None,
            help="Test stories file or folder (default: the project's tests/; without one, "
            "the training stories).",
        ),
        results_option,
        click.option(
            "--fail-on-prediction-errors",
            is_flag=True,
            help="A story predicted wrong makes the exit status 1 (Rasa's; without it, the "
            "reports say so and the status is 0).",
        ),
        _report_options,
        click.option(
            "--no-warnings",
            is_flag=True,
            help="Rasa's flag, accepted: no file of stories with prediction warnings is written.",
        ),
        click.option(
            "--max-stories",
            type=click.IntRange(min=1),
            default=None,
            help="Test on the first N test stories only (Rasa's).",
        ),
        click.option(
            "--endpoints",
            "test_endpoints",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Rasa's option, accepted: test stories are predicted against, no action is run.",
        ),
        click.option("--e2e", "--end-to-end", "end_to_end", is_flag=True, help=e2e_help),
    )


@main.group(invoke_without_command=True, cls=spaced_command(click.Group, _SPACED))
@debug_option
@_story_options(
    "Rasa's flag, accepted: `chatbot test` is always end to end, as `rasa test` (`chatbot "
    "test core` is not, unless --e2e)."
)
@_comparison_options(
    "Two or more configs: compare their policies on fewer and fewer training stories",
    "0,5,25,50,70,95",
    "stories",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_context
@user_errors
def test(
    ctx: click.Context,
    project_dir: Path,
    model_path: Path | None,
    stories: Path | None,
    out_dir: Path,
    fail_on_prediction_errors: bool,
    end_to_end: bool,
    no_warnings: bool,
    max_stories: int | None,
    test_endpoints: Path | None,
    configs: tuple[str, ...],
    runs: int,
    percentages: str,
    seed: int,
    **flags: Any,
) -> None:
    """Test the dialogue model and the NLU on test stories, end to end as `rasa test`: a user
    text the NLU reads otherwise than the story fails it (`chatbot test core`: the dialogue
    alone; `chatbot test nlu`: the NLU alone); with --fail-on-prediction-errors the exit status
    is 1 if a story is predicted wrong. With two or more --config, compare their policies on
    fewer and fewer training stories instead."""
    del no_warnings, end_to_end  # what we always do
    options = _options(flags)
    if configs and ctx.invoked_subcommand is None:
        _compare_policies(project_dir, stories, configs, runs, percentages, seed, out_dir, options)
        return
    if ctx.invoked_subcommand is not None:  # `chatbot test --project X nlu`: X holds for nlu
        ctx.obj = {
            "project_dir": project_dir,
            "model_path": model_path,
            "out_dir": out_dir,
            "stories": stories,
            "max_stories": max_stories,
            "fail_on_prediction_errors": fail_on_prediction_errors,
            **flags,
        }
        return
    _test_dialogue(
        project_dir,
        model_path,
        stories,
        out_dir,
        max_stories,
        test_endpoints,
        options,
        end_to_end=True,
        fail=fail_on_prediction_errors,
    )


@test.command(name="core")
@debug_option
@_story_options(
    "End to end (Rasa's --e2e): a story's user text the NLU reads otherwise than the story "
    "(intent, entities) fails the story too."
)
@click.pass_context
@user_errors
def test_core(
    ctx: click.Context,
    project_dir: Path,
    model_path: Path | None,
    stories: Path | None,
    out_dir: Path,
    fail_on_prediction_errors: bool,
    end_to_end: bool,
    no_warnings: bool,
    max_stories: int | None,
    test_endpoints: Path | None,
    **flags: Any,
) -> None:
    """Test the dialogue model on test stories (Rasa's `rasa test core`): the stories' intents
    and entities are given, unless --e2e; with --fail-on-prediction-errors the exit status is 1
    if a story is predicted wrong."""
    del no_warnings  # what we always do
    values = {
        name: from_parent(ctx, name, value)
        for name, value in {
            "project_dir": project_dir,
            "model_path": model_path,
            "out_dir": out_dir,
            "stories": stories,
            "max_stories": max_stories,
            "fail_on_prediction_errors": fail_on_prediction_errors,
            **flags,
        }.items()
    }
    _test_dialogue(
        values["project_dir"],
        values["model_path"],
        values["stories"],
        values["out_dir"],
        values["max_stories"],
        test_endpoints,
        _options({name: values[name] for name in _REPORT_NAMES}),
        end_to_end=end_to_end,
        nlu=False,
        fail=values["fail_on_prediction_errors"],
    )


def _test_dialogue(
    project_dir: Path,
    model_path: Path | None,
    stories: Path | None,
    out_dir: Path,
    max_stories: int | None,
    test_endpoints: Path | None,
    options: Any,
    *,
    end_to_end: bool,
    nlu: bool = True,
    fail: bool = False,
) -> None:
    """The test stories predicted turn by turn, with their reports; with ``nlu`` the NLU part
    of ``chatbot test`` too. With ``fail`` (Rasa's --fail-on-prediction-errors), exits 1 where
    a story is predicted wrong."""
    from training.evaluate import evaluate_stories, write_reports

    if test_endpoints is not None:
        click.echo("--endpoints: accepted, not needed (test stories run no action)")
    model = _load_model(project_dir, model_path)
    test_stories = _test_stories(project_dir, stories)[:max_stories]
    if not test_stories:
        folder = stories or project_dir / "tests"
        files = sorted(folder.glob("test_*.y*ml")) if folder.is_dir() else []
        if folder.is_file():
            held = ": it holds no 'stories:' (rules are not tested)"
        elif files:
            held = f": {', '.join(f.name for f in files)} hold no 'stories:'"
        else:
            held = " (files test_*.yml)"
        raise ChatbotError(f"no test stories found in {folder}{held}")
    evaluation = evaluate_stories(model, test_stories, end_to_end=end_to_end)
    write_reports(evaluation, out_dir, options)
    click.echo(f"Action-level accuracy: {evaluation.action_accuracy:.3f}")
    click.echo(
        f"Conversation accuracy: {evaluation.conversation_accuracy:.3f} "
        f"({sum(r.passed for r in evaluation.results)}/{len(evaluation.results)} stories)"
    )
    if end_to_end:
        misread = sum(len(r.misread) for r in evaluation.results)
        click.echo(f"End to end: {misread} user messages the NLU read otherwise than the stories")
    if nlu:
        _test_stories_nlu(model, test_stories, out_dir, options)
    click.echo(f"Reports written to {out_dir}")
    if fail and evaluation.conversation_accuracy < 1.0:
        click.echo("Stories predicted wrong (--fail-on-prediction-errors)", err=True)
        sys.exit(1)


def _test_stories_nlu(model: Any, stories: list[Any], out_dir: Path, options: Any) -> None:
    """The NLU part of ``chatbot test``: the NLU model on the test stories' user texts."""
    from chatbot.nlu.model import NLUModel
    from training.nlu.evaluate import evaluate_nlu, examples_of_stories

    examples = examples_of_stories(stories)
    if not isinstance(model.nlu, NLUModel) or not examples:
        click.echo("NLU: no user texts with intents in the test stories, or no NLU model; skipped")
        return
    summary = evaluate_nlu(model.nlu, examples, out_dir, options)
    _echo_nlu_summary(summary, "the test stories' user messages")


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


@test.command(name="nlu", cls=spaced_command(click.Command, _SPACED))
@debug_option
@project_option
@domain_option
@model_option
@nlu_path_option(
    "NLU test data, a file or folder: the model (--model, else the newest) is scored on it. "
    "Without it, the project's NLU data is split 80/20 and a model trained on the 80."
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
    type=Number(min=0.0, max=1.0, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of each intent's examples held out by the split.",
)
@_comparison_options(
    "A config to test instead of the project's; two or more: compare their pipelines",
    "0,25,50,75",
    "training examples",
)
@click.option("--seed", type=int, default=42, show_default=True)
@results_option
@_report_options
@click.pass_context
@user_errors
def test_nlu(
    ctx: click.Context,
    project_dir: Path,
    domain: Path | None,
    model_path: Path | None,
    nlu_path: Path | None,
    folds: int | None,
    cross_validation: bool,
    test_share: float,
    configs: tuple[str, ...],
    runs: int,
    percentages: str,
    seed: int,
    out_dir: Path,
    **flags: Any,
) -> None:
    """Test the NLU model: intent and entity reports, confusion matrix, confidence histogram;
    with two or more --config, compare their pipelines on less and less training data."""
    from chatbot.nlu.model import NLUModel
    from training.nlu.evaluate import cross_validate, evaluate_nlu, split_evaluate

    project_dir = from_parent(ctx, "project_dir", project_dir)  # `chatbot test --project X nlu`
    model_path = from_parent(ctx, "model_path", model_path)
    out_dir = from_parent(ctx, "out_dir", out_dir)
    options = _options({name: from_parent(ctx, name, flags[name]) for name in _REPORT_NAMES})
    config_files = _config_files(configs)
    if cross_validation and folds is None:
        folds = 5
    if len(config_files) > 1:
        _compare_configs(
            project_dir, nlu_path, config_files, runs, percentages, seed, out_dir, options
        )
        return
    if folds is not None or nlu_path is None:
        if nlu_path is not None and config_files:  # NLU data and a config: no project needed
            pipeline = _read_config(config_files[0]).pipeline
            data = _read_nlu_data(nlu_path)
        else:
            project = _load_project(project_dir, domain=domain)
            pipeline = project.config.pipeline
            if config_files:
                pipeline = _read_config(config_files[0]).pipeline
            data = _read_nlu_data(nlu_path) if nlu_path is not None else project.nlu
        if not data.examples:
            raise ChatbotError(f"no NLU examples in {nlu_path or project_dir}")
        if folds is not None:
            click.echo(f"Cross-validating {len(data.examples)} examples in {folds} folds ...")
            result = cross_validate(data, pipeline, folds, out_dir, seed=seed, options=options)
            pooled: dict[str, Any] = dict(result["pooled"])  # type: ignore[call-overload]
            _echo_nlu_summary(pooled, f"the held-out examples of {folds} folds")
        else:
            click.echo(
                f"Holding out {test_share:.0%} of each intent's examples, training on the rest ..."
            )
            summary = split_evaluate(
                data,
                pipeline,
                out_dir,
                test_share=test_share,
                seed=seed,
                options=options,
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
        summary = evaluate_nlu(model.nlu, examples, out_dir, options)
        _echo_nlu_summary(summary, f"the examples of {nlu_path}")
    click.echo(f"Reports written to {out_dir}")


def _compare_policies(
    project_dir: Path,
    stories: Path | None,
    configs: Sequence[str],
    runs: int,
    percentages: str,
    seed: int,
    out_dir: Path,
    options: Any,
) -> None:
    from training.compare_core import GRAPH_FILE, compare_policy_configs
    from training.train import check_config

    files = _config_files(configs)
    if len(files) < 2:
        raise ChatbotError(
            "--config: two or more configs to compare; `chatbot test` without it tests the "
            "trained model"
        )
    names = _config_names(files)
    project = _load_project(project_dir)
    policies = {}
    for name, path in zip(names, files, strict=True):
        config = _read_config(path)
        check_config(dataclasses.replace(project, config=config))  # before any training
        policies[name] = config.policies
    shares = _percentages(percentages)
    test_stories = _test_stories(project_dir, stories)
    if not test_stories:
        raise ChatbotError(f"no test stories found in {stories or project_dir / 'tests'}")
    click.echo(
        f"Comparing {', '.join(names)} over {runs} runs on {len(test_stories)} test stories, "
        f"leaving out {', '.join(f'{p}%' for p in shares)} of {len(project.stories)} stories ..."
    )
    result = compare_policy_configs(
        project, policies, test_stories, out_dir, runs=runs, percentages=shares, seed=seed,
        plot=options.plots, progress=lambda line: click.echo(f"  {line}"),
    )  # fmt: skip
    _echo_comparison(result["results"], result["stories"], "stories", "correct test stories", ".1f")
    _echo_written(out_dir, GRAPH_FILE if options.plots else None)


def _echo_comparison(
    results: dict[str, list[list[float]]], sizes: list[int], unit: str, what: str, form: str
) -> None:
    """Each config's score at each amount of training data, the mean of the runs."""
    for name, scores in results.items():
        means = [sum(column) / len(column) for column in zip(*scores, strict=True)]
        shown = ", ".join(f"{n} {unit} {m:{form}}" for n, m in zip(sizes, means, strict=True))
        click.echo(f"  {name}: {what} (mean of {len(scores)} runs) {shown}")


def _echo_written(out_dir: Path, graph: str | None) -> None:
    from training.nlu.compare import RESULTS_FILE

    written = RESULTS_FILE + (f" and {graph}" if graph else "")
    click.echo(f"Results ({written}) written to {out_dir}")


def _config_names(files: Sequence[Path]) -> list[str]:
    names = [path.stem for path in files]
    if len(set(names)) != len(names):
        raise ChatbotError(f"configs to compare need names of their own, got {names}")
    return names


def _percentages(text: str) -> list[int]:
    try:
        return [int(p) for p in text.replace(",", " ").split()]
    except ValueError:
        raise ChatbotError(f"--percentages: whole numbers, got {text!r}") from None


def _config_files(configs: Sequence[str]) -> list[Path]:
    """``--config`` values, each a file or files separated by commas."""
    found: list[Path] = []
    for value in configs:
        for part in value.split(","):
            path = Path(part.strip())
            if not path.is_file():
                raise ChatbotError(f"{path}: no such config file")
            found.append(path)
    return found


def _read_config(path: Path) -> Any:
    from chatbot.project.config_reader import read_config

    return read_config(path)


def _compare_configs(
    project_dir: Path,
    nlu_path: Path | None,
    config_files: Sequence[Path],
    runs: int,
    percentages: str,
    seed: int,
    out_dir: Path,
    options: Any,
) -> None:
    from training.nlu.compare import GRAPH_FILE, compare_pipelines
    from training.nlu.pipeline import settings_from_pipeline

    names = _config_names(config_files)
    pipelines = {}
    for name, path in zip(names, config_files, strict=True):
        pipeline = _read_config(path).pipeline
        settings_from_pipeline(pipeline)  # a mistake in any config stops it before training
        pipelines[name] = pipeline
    shares = _percentages(percentages)
    data = _read_nlu_data(nlu_path) if nlu_path is not None else _load_project(project_dir).nlu
    if not data.examples:
        raise ChatbotError(f"no NLU examples in {nlu_path or project_dir}")
    click.echo(
        f"Comparing {', '.join(names)} over {runs} runs, leaving out "
        f"{', '.join(f'{p}%' for p in shares)} of the training data ..."
    )
    result = compare_pipelines(
        data, pipelines, out_dir, runs=runs, percentages=shares, seed=seed, options=options,
        progress=lambda line: click.echo(f"  {line}"),
    )  # fmt: skip
    _echo_comparison(result["results"], result["examples"], "examples", "intent F1", ".3f")
    _echo_written(out_dir, GRAPH_FILE if options.plots else None)


def _test_stories(project_dir: Path, stories: Path | None) -> list[Any]:
    """The project's test stories, or those in a file or folder given with --stories. Rules
    there are not tested, as in Rasa (``rasa test --stories data`` tests the stories only: a
    rule's condition is no part of a story); one line says how many were left out. A project
    without a ``tests/`` folder has its training stories tested, as Rasa does."""
    from chatbot.project.story_reader import read_stories

    if stories is None:
        project = _load_project(project_dir)
        found, rules = list(project.test_stories), len(project.test_rules)
        tests = project_dir / "tests"
        if not (found or rules or tests.exists()):  # Rasa's fallback to data/
            click.echo(f"{tests} does not exist: testing the training stories instead (as Rasa)")
            found = list(project.stories)
    else:
        found, rules = [], 0
        for file in yaml_files(stories):
            test_stories, test_rules = read_stories(file, test=True)
            found.extend(test_stories)
            rules += len(test_rules)
    if rules:
        click.echo(f"{rules} rule(s) left out: stories are tested, rules are not (as in Rasa)")
    return found
