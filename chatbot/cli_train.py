"""``chatbot train`` (with ``train nlu`` and ``train core``): the project trained into one model
file, reusing the parts nothing changed for (``training.reuse``), with Rasa's options. A
composition root, as ``chatbot.cli``: it imports ``training`` lazily."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from chatbot.cli_common import (
    Number,
    _load_project,
    config_option,
    debug_option,
    domain_option,
    from_parent,
    main,
    model_file_path,
    project_option,
    spaced_command,
    split_test_story_problems,
    stacked,
    user_errors,
)
from chatbot.errors import ChatbotError, ProjectErrors

# Rasa's `--data a b` (several values after one option), and `rasa train core -s` / `rasa
# train nlu -u` for the stories' and the NLU data's files.
_SPACED_DATA = {"--data": "repeat", "-s": "repeat", "--stories": "repeat", "-u": "repeat",
                "--nlu": "repeat"}  # fmt: skip

_train_options = stacked(
    project_option,
    domain_option,
    click.option(
        "--data",
        "-s",
        "--stories",
        "-u",
        "--nlu",
        "data",
        type=click.Path(exists=True, path_type=Path),
        multiple=True,
        help="Training data files or folders, instead of the project's data/ (several after "
        "one --data, or repeated; Rasa's -s/--stories of train core, -u/--nlu of train nlu).",
    ),
    config_option,
    click.option(
        "--out",
        "out",
        type=click.Path(),  # a str: Path would drop the trailing slash that makes it a folder
        default=None,
        help="The folder to write <time>.model or --fixed-model-name into, as Rasa's --out "
        "(made where missing); or, ending in .model, the model file to write. A file that is "
        "not a model is never overwritten.  [default: the project's models/]",
    ),
    click.option(
        "--fixed-model-name",
        default=None,
        help="The model file's name in the --out folder, instead of the time (Rasa's option).",
    ),
    click.option(
        "--augmentation",
        type=click.IntRange(min=0),
        default=None,
        help="Stories glued together per story for the LSTM policy's training, as Rasa's "
        "--augmentation (0: none).  [default: 50, or the policy's augmentation_factor]",
    ),
    click.option("--seed", type=int, default=42, show_default=True),
    click.option("--quiet", is_flag=True, help="No progress bars."),
    click.option(
        "--force",
        is_flag=True,
        help="Train every part anew, even one that nothing it is trained on changed for "
        "(Rasa's --force).",
    ),
    click.option(
        "--dry-run",
        is_flag=True,
        help="Say which parts would be trained and which reused, train nothing, and exit with "
        "Rasa's code: 0 nothing to train, 1 something to train, 8 --force.",
    ),
    click.option(
        "--reuse-from",
        type=click.Path(file_okay=False, path_type=Path),
        multiple=True,
        help="Another folder of model files to take unchanged parts from (repeatable).  "
        "[default: the folder the model is written to]",
    ),
    click.option(
        "--fail-on-validation-warnings",
        is_flag=True,
        help="Run the data validator first (`chatbot data validate`) and stop on its warnings "
        "as on its errors (Rasa's).",
    ),
    click.option(
        "--validation-max-history",
        type=click.IntRange(min=1),
        default=None,
        help="Run the data validator first, checking the stories for conflicts over this many "
        "turns (Rasa's).",
    ),
    click.option(
        "--skip-validation",
        is_flag=True,
        help="Rasa's flag, accepted: the files are always checked as they are read, the data "
        "validator runs only when one of the two options above asks for it; a line says so.",
    ),
    click.option(
        "--num-threads",
        type=click.IntRange(min=1),
        default=None,
        help="torch's threads while training (Rasa's); 1 also trains the NLU and the policies "
        "one after the other (by default, with two CPUs or more, they train at once).",
    ),
    click.option(
        "--finetune",
        is_flag=False,
        flag_value="",
        default=None,
        help="Rasa's fine-tuning, accepted: parts nothing changed for are reused anyway, the "
        "others are trained anew (not fine-tuned), and a line says so.",
    ),
    click.option(
        "--epoch-fraction",
        type=Number(min=0),
        default=None,
        help="Rasa's option of --finetune, accepted: nothing is fine-tuned, and a line says so.",
    ),
    click.option(
        "--persist-nlu-data",
        is_flag=True,
        help="Rasa's flag, accepted: the model keeps what parsing needs, not the NLU data.",
    ),
    click.option(
        "--debug-plots",
        is_flag=True,
        help="Rasa's flag, accepted: `chatbot visualize` draws the stories instead.",
    ),
    click.option(
        "--endpoints",
        "train_endpoints",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Rasa's option, accepted: training needs no endpoint.",
    ),
)
_TRAIN_NAMES = (
    "project_dir", "domain", "data", "config", "out", "fixed_model_name", "augmentation", "seed",
    "quiet", "force", "dry_run", "reuse_from", "fail_on_validation_warnings",
    "validation_max_history", "skip_validation", "num_threads", "finetune", "epoch_fraction",
    "persist_nlu_data", "debug_plots", "train_endpoints",
)  # fmt: skip


@main.group(invoke_without_command=True, cls=spaced_command(click.Group, _SPACED_DATA))
@debug_option(quiet=False)
@_train_options
@click.pass_context
@user_errors
def train(ctx: click.Context, **options: Any) -> None:
    """Train the project's NLU and dialogue models into one model file (`chatbot train nlu`,
    `chatbot train core`: one of them, as Rasa's)."""
    if ctx.invoked_subcommand is not None:  # `chatbot train --project X nlu`: X holds for nlu
        ctx.obj = options
        return
    _train(options, nlu=True, core=True)


@train.command(name="nlu", cls=spaced_command(click.Command, _SPACED_DATA))
@debug_option(quiet=False)
@_train_options
@click.pass_context
@user_errors
def train_nlu(ctx: click.Context, **options: Any) -> None:
    """Train the NLU model alone (Rasa's `rasa train nlu`): the model parses messages
    (`chatbot shell nlu`, POST /model/parse) and predicts no action."""
    _train({name: from_parent(ctx, name, options[name]) for name in _TRAIN_NAMES}, core=False)


@train.command(name="core", cls=spaced_command(click.Command, _SPACED_DATA))
@debug_option(quiet=False)
@_train_options
@click.pass_context
@user_errors
def train_core(ctx: click.Context, **options: Any) -> None:
    """Train the dialogue policies alone (Rasa's `rasa train core`): the model answers
    /intent{...} payloads, and understands no other text."""
    _train({name: from_parent(ctx, name, options[name]) for name in _TRAIN_NAMES}, nlu=False)


def _accepted_train_flags(options: dict[str, Any]) -> None:
    """Rasa's ``rasa train`` flags that change nothing here: one line each says why."""
    if options["finetune"] is not None:
        click.echo(
            "--finetune: parts nothing changed for are reused; the others are trained anew, "
            "not fine-tuned"
        )
    for name, why in (
        ("epoch_fraction", "nothing is fine-tuned: the parts trained are trained in full"),
        (
            "skip_validation",
            "the files are always checked as they are read; the data validator runs only "
            "with --fail-on-validation-warnings or --validation-max-history",
        ),
        ("persist_nlu_data", "the model keeps what parsing needs, not the NLU data"),
        ("debug_plots", "`chatbot visualize` draws the stories"),
        ("train_endpoints", "training needs no endpoint"),
    ):
        if options[name] is not None and options[name] is not False:
            flag = "--endpoints" if name == "train_endpoints" else "--" + name.replace("_", "-")
            click.echo(f"{flag}: accepted, not needed ({why})")


def _validate_before_training(options: dict[str, Any]) -> None:
    """``chatbot data validate``'s checks, as Rasa's ``rasa train`` runs them: errors stop the
    training, and warnings too with --fail-on-validation-warnings. Test stories are not
    training data: their problems are left to the loading that follows (a warning there)."""
    from chatbot.cli_data import counting_warnings, validation_problems

    with counting_warnings() as warnings:
        problems = validation_problems(
            options["project_dir"],
            options["domain"],
            options["data"],
            options["config"],
            options["validation_max_history"],
        )
    _, problems = split_test_story_problems(options["project_dir"], problems, options["data"])
    if problems:
        raise ProjectErrors(problems)
    if warnings and options["fail_on_validation_warnings"]:
        raise ChatbotError(
            f"{len(warnings)} validation warning(s) (--fail-on-validation-warnings): "
            "nothing trained"
        )


def _train(options: dict[str, Any], *, nlu: bool = True, core: bool = True) -> None:
    from training.reuse import PART_NAMES, dry_run_code, find_reusable, part_fingerprints
    from training.train import check_config, train_to_file

    project_dir: Path = options["project_dir"]
    data = options["data"]
    _accepted_train_flags(options)
    if options["fail_on_validation_warnings"] or options["validation_max_history"] is not None:
        _validate_before_training(options)
    project = _load_project(
        project_dir,
        domain=options["domain"],
        data=data or None,
        config=options["config"],
        training=True,
    )
    if options["num_threads"] is not None:
        import torch

        torch.set_num_threads(options["num_threads"])
    path = model_file_path(project_dir, options["out"], options["fixed_model_name"])
    parts = [part for part, wanted in (("nlu", nlu), ("core", core)) if wanted]
    reusable: dict[str, Path] = {}
    fingerprints: dict[str, str] | None = None
    if not options["force"]:
        fingerprints = part_fingerprints(
            project, seed=options["seed"], augmentation=options["augmentation"]
        )
        folders = [path.parent, *options["reuse_from"]]
        reusable = find_reusable(folders, fingerprints, parts)
    if options["dry_run"]:
        check_config(project)
        for part in parts:
            if part in reusable:
                click.echo(f"{PART_NAMES[part]}: unchanged since {reusable[part]}; reused")
            else:
                click.echo(f"{PART_NAMES[part]}: trained")
        code = dry_run_code(parts, reusable, force=options["force"])
        click.echo(
            {
                0: "No training required: nothing any part is trained on has changed.",
                1: "The model needs to be retrained.",
                8: "The training was forced.",
            }[code]
        )
        sys.exit(code)
    started = time.perf_counter()
    model = train_to_file(
        project,
        path,
        seed=options["seed"],
        show_progress=not options["quiet"],
        augmentation=options["augmentation"],
        nlu=nlu,
        core=core,
        reuse=reusable,
        parallel=False if options["num_threads"] == 1 else None,
        fingerprints=fingerprints,
    )
    reused = list(model.meta.get("reused", {}))
    if reused == parts and len(parts) > 1 and len({reusable[p] for p in parts}) == 1:
        click.echo(
            f"Nothing changed since {reusable[parts[0]]}: its NLU and dialogue policies are "
            "reused (--force trains them anew)"
        )
    else:
        for part in reused:
            click.echo(
                f"{PART_NAMES[part]}: nothing it is trained on changed since {reusable[part]}; "
                "reused (--force trains it anew)"
            )
    click.echo(f"Trained model saved to {path} in {time.perf_counter() - started:.1f}s")
