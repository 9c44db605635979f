"""The ``chatbot`` command (also ``python -m chatbot``). A composition root: it may import
``training`` and ``connectors``, lazily, so that serving a model never loads the trainers.

This module holds init and run (with ``run actions``); ``chatbot.cli_train`` (train),
``chatbot.cli_shell`` (shell, interactive), ``chatbot.cli_eval`` (test), ``chatbot.cli_data``
(data, visualize) and ``chatbot.cli_store`` (export, import, evaluate) add theirs to the same
group (``chatbot.cli_common.main``)."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path

import click

from chatbot import cli_data, cli_eval, cli_shell, cli_store, cli_train  # noqa: F401 - commands
from chatbot.cli_common import (
    PORT,
    Number,
    debug_option,
    from_parent,
    log_options,
    log_options_of,
    main,
    model_option,
    project_option,
    spaced_command,
    user_errors,
)
from chatbot.errors import ChatbotError, ConfigError
from chatbot.log_setup import apply_log_options

__all__ = ["main"]

logger = logging.getLogger(__name__)

STARTER = Path(__file__).parent / "project" / "starter"


@main.command()
@debug_option
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option(
    "--init-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Rasa's name for DIRECTORY.",
)
@click.option(
    "--no-prompt",
    is_flag=True,
    help="Rasa's flag: also train the starter bot (Rasa's init asks whether to).",
)
@user_errors
def init(directory: Path | None, init_dir: Path | None, no_prompt: bool) -> None:
    """Write a small working starter bot into DIRECTORY (default: the current folder, which
    must be empty: nothing is overwritten)."""
    directory = directory or init_dir or Path(".")
    if directory.exists() and any(directory.iterdir()):
        raise ChatbotError(f"{directory} is not empty; choose a new folder")
    shutil.copytree(
        STARTER, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    # `chatbot init` in the current folder: its name, not "Created a starter bot in .."
    shown = directory.resolve() if directory.name in ("", "..") else directory
    click.echo(f"Created a starter bot in {shown}")
    if not no_prompt:
        click.echo(f"Next: chatbot train --project {directory}")
        return
    from chatbot.cli_common import _load_project
    from chatbot.model_file import new_model_path
    from training.train import train_project

    path = new_model_path(directory / "models")
    train_project(_load_project(directory), show_progress=False).to_file(path)
    click.echo(f"Trained model saved to {path}. Next: chatbot shell --project {directory}")


@main.group(invoke_without_command=True, cls=spaced_command(click.Group, {"--cors": "repeat"}))
@project_option
@model_option
@click.option(
    "-i",
    "--host",
    "--interface",
    "host",
    default="0.0.0.0",
    show_default=True,
    help="The interface to listen on. With --enable-api and neither --auth-token nor "
    "--jwt-secret, 127.0.0.1 only, whatever this says (the log says so): give a token to "
    "serve others, in a container too.",
)
@click.option("-p", "--port", type=PORT, default=5005, show_default=True)
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
    envvar=["CHATBOT_AUTH_TOKEN", "AUTH_TOKEN"],
    help="A token the API requires (Bearer or ?token=); or $CHATBOT_AUTH_TOKEN (Rasa's "
    "$AUTH_TOKEN).",
)
@click.option(
    "--jwt-secret",
    default=None,
    envvar=["CHATBOT_JWT_SECRET", "JWT_SECRET"],
    help="The secret (or public key) of API JWTs; or $CHATBOT_JWT_SECRET (Rasa's $JWT_SECRET).",
)
@click.option(
    "--jwt-method",
    default="HS256",
    envvar=["CHATBOT_JWT_METHOD", "JWT_METHOD"],
    show_default=True,
    help="The JWT algorithm.",
)
@click.option(
    "--jwt-private-key",
    default=None,
    envvar="JWT_PRIVATE_KEY",
    help="Rasa's key for making tokens: accepted, not needed (the server only checks tokens, "
    "with --jwt-secret).",
)
@click.option(
    "--cors",
    multiple=True,
    help="Origins browsers may call from ('*': any): --cors a b, as Rasa's, or --cors a --cors b.",
)
@click.option(
    "--rate-limit",
    default="60/min",
    show_default=True,
    help="Messages per sender, e.g. 30/min, 5/s, 100/10s; 'off' for none.",
)
@click.option(
    "--client-rate-limit",
    default="off",
    show_default=True,
    help="Messages per client address on the REST, callback and socket.io channels, whatever "
    "senders they name, e.g. 300/min; 'off' for none. Behind a proxy, name it in "
    "--forwarded-allow-ips, or every client counts as the proxy.",
)
@click.option(
    "--forwarded-allow-ips",
    envvar="FORWARDED_ALLOW_IPS",
    default="",
    help="Proxies (addresses or networks, comma-separated; '*': any) whose X-Forwarded-For "
    "names the client for --client-rate-limit ($FORWARDED_ALLOW_IPS, as uvicorn's).",
)
@click.option(
    "--max-body-size",
    type=click.IntRange(min=1),
    default=1024 * 1024,
    show_default=True,
    help="Largest request body in bytes.",
)
@click.option(
    "--max-message-length",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Longest user message in characters.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Messages in progress at most; one more is a 503 (try again). 0: no limit.",
)
@click.option(
    "--body-timeout",
    "--request-timeout",
    "body_timeout",
    type=Number(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds a request body may take to arrive (a model upload: between two chunks); "
    "Rasa's --request-timeout.",
)
@click.option(
    "--response-timeout",
    type=Number(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds a request may take to be answered once it arrived (503 after), as Rasa's.",
)
@click.option(
    "--shutdown-timeout",
    type=Number(min=0),
    default=30.0,
    show_default=True,
    help="Seconds SIGTERM waits for messages in flight.",
)
@click.option(
    "--wait-for-store",
    "store_wait",
    type=Number(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to keep trying an unreachable conversation or lock store at start (at most "
    "5 s apart, each failure logged) before exiting; 0: exit at once.",
)
@click.option(
    "--ssl-certificate",
    type=click.Path(path_type=Path),
    default=None,
    help="Serve HTTPS with this PEM certificate (its chain after it).",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(path_type=Path),
    default=None,
    help="The certificate's PEM private key (default: in the certificate's file).",
)
@click.option(
    "--ssl-ca-file",
    type=click.Path(path_type=Path),
    default=None,
    help="PEM CA certificates loaded into the TLS context, as Rasa's (clients are not asked "
    "for certificates).",
)
@click.option(
    "--ssl-password",
    default=None,
    envvar="CHATBOT_SSL_PASSWORD",
    help="The private key's password; or $CHATBOT_SSL_PASSWORD.",
)
@click.option(
    "--connector",
    default=None,
    help="Mount only this channel (its block of the credentials, or its defaults), as Rasa's.",
)
@click.option(
    "--remote-storage",
    default=None,
    help="Rasa's cloud model storage (aws, gcs, azure): not provided; an error says so.",
)
@log_options
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Server processes sharing the port, for a machine with more cores (default: "
    "$SANIC_WORKERS as in Rasa, else 1; at most 4 per core); they lock conversations through a "
    "file, or through endpoints.yml's Redis lock store. The rate limit counts per process.",
)
@debug_option
@click.pass_context
@user_errors
def run(
    ctx: click.Context,
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
    client_rate_limit: str,
    forwarded_allow_ips: str,
    max_body_size: int,
    max_message_length: int,
    max_in_flight: int,
    body_timeout: float,
    response_timeout: float,
    shutdown_timeout: float,
    store_wait: float,
    ssl_certificate: Path | None,
    ssl_keyfile: Path | None,
    ssl_ca_file: Path | None,
    ssl_password: str | None,
    jwt_private_key: str | None,
    connector: str | None,
    remote_storage: str | None,
    use_syslog: bool,
    syslog_address: str,
    syslog_port: int,
    syslog_protocol: str,
    logging_config_file: Path | None,
    workers: int | None,
    log_file: Path | None,
) -> None:
    """Serve the bot over HTTP (REST channel at /webhooks/rest/webhook); `chatbot run actions`:
    the project's custom actions in a rasa-sdk action server."""
    if ctx.invoked_subcommand is not None:  # `chatbot run --project X actions`: X holds for it
        ctx.obj = {"project_dir": project_dir}
        return
    from chatbot.server.app import serve
    from chatbot.server.clients import TrustedProxies
    from chatbot.server.settings import RateLimit, ServerSettings

    if remote_storage is not None:
        raise ConfigError(
            f"--remote-storage {remote_storage}: models from cloud storage are not provided; "
            "serve a model file (--model) or pull from a model server (endpoints.yml models:)"
        )
    if jwt_private_key is not None:
        logger.info("--jwt-private-key is not needed here: tokens are checked with --jwt-secret")
    log = log_options_of(
        {
            "use_syslog": use_syslog,
            "syslog_address": syslog_address,
            "syslog_port": syslog_port,
            "syslog_protocol": syslog_protocol,
            "logging_config_file": logging_config_file,
            "log_file": log_file,
        }
    )
    apply_log_options(log)
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
        client_rate_limit=RateLimit.parse(client_rate_limit, option="--client-rate-limit"),
        forwarded_allow_ips=TrustedProxies([forwarded_allow_ips]).specs,
        max_body_bytes=max_body_size,
        max_message_chars=max_message_length,
        body_timeout=body_timeout,
        response_timeout=response_timeout,
        max_in_flight=max_in_flight or None,
        shutdown_timeout=shutdown_timeout,
        ssl_certificate=ssl_certificate,
        ssl_keyfile=ssl_keyfile,
        ssl_ca_file=ssl_ca_file,
        ssl_password=ssl_password,
        # Without its database the bot would only apologise: say so and exit instead.
        require_store_at_start=True,
        store_wait=store_wait,
        workers=workers,
        log=log,
        connector=connector,
    )
    serve(settings)


@run.command(
    name="actions",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@project_option
@click.option(
    "--actions",
    "package",
    default="actions",
    show_default=True,
    help="The Python package or module of the custom actions, in the project folder.",
)
@click.option("-p", "--port", type=PORT, default=5055, show_default=True)
@click.argument("sdk_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@user_errors
def run_actions(
    ctx: click.Context, project_dir: Path, package: str, port: int, sdk_args: tuple[str, ...]
) -> None:
    """Serve the project's custom actions with rasa-sdk's action server (Rasa's `rasa run
    actions`); options it does not know go to rasa-sdk (`--cors`, `--auto-reload`, ...)."""
    project_dir = from_parent(ctx, "project_dir", project_dir).resolve()
    if not project_dir.is_dir():
        raise ConfigError(f"--project: no folder {str(project_dir)!r}")
    first = package.split(".")[0]
    if not ((project_dir / first).is_dir() or (project_dir / f"{first}.py").is_file()):
        raise ConfigError(
            f"--actions: no package or module {first!r} in {str(project_dir)!r} "
            f"(a folder {first}/ or a file {first}.py)"
        )
    if importlib.util.find_spec("rasa_sdk") is None:
        raise ConfigError("rasa-sdk is not installed: pip install rasa-sdk")
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(project_dir), path]))}
    command = [sys.executable, "-m", "rasa_sdk", "--actions", package, "--port", str(port)]
    os.chdir(project_dir)
    # The action server takes this process over: signals (Ctrl-C, SIGTERM) reach it directly.
    os.execve(sys.executable, [*command, *sdk_args], env)


if __name__ == "__main__":  # pragma: no cover
    main()
