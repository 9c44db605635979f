"""endpoints.yml's ``action_endpoint`` -> the executor it asks for, or a clear ConfigError."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path
from typing import Any

import pytest

from chatbot.actions.endpoint import create_action_executor
from chatbot.actions.in_process import InProcessExecutor
from chatbot.actions.remote import HTTPActionExecutor
from chatbot.errors import ConfigError
from chatbot.project.domain import Origin
from chatbot.project.endpoints import EndpointBlock
from tests.helpers import DOMAINS

URL = "http://localhost:5055/webhook"


def block(**params: Any) -> EndpointBlock:
    return EndpointBlock("action_endpoint", params, Origin("endpoints.yml", 3))


def test_no_block_no_executor() -> None:
    assert create_action_executor(None, Path(".")) is None


def test_in_process() -> None:
    executor = create_action_executor(block(actions_module="actions"), DOMAINS / "restaurant")
    assert isinstance(executor, InProcessExecutor)


def test_url_with_every_setting() -> None:
    executor = create_action_executor(
        block(
            url=URL,
            timeout=2.5,
            token="secret",
            token_name="auth",
            headers={"X-Key": "k"},
            params={"a": 1},
            basic_auth={"username": "u", "password": "p"},
            circuit_breaker={"failures": 3, "open_seconds": 12},
        ),
        Path("."),
    )
    assert isinstance(executor, HTTPActionExecutor)
    assert executor.timeout == 2.5
    assert executor.params == {"a": "1", "auth": "secret"}
    assert executor.headers["X-Key"] == "k"
    assert executor.headers["Authorization"].startswith("Basic ")
    assert (executor.breaker.failure_threshold, executor.breaker.open_seconds) == (3, 12.0)


def test_defaults() -> None:
    executor = create_action_executor(block(url=URL), Path("."))
    assert isinstance(executor, HTTPActionExecutor)
    assert executor.timeout == 10.0
    assert executor.params == {}
    assert (executor.breaker.failure_threshold, executor.breaker.open_seconds) == (5, 30.0)
    assert executor.health_url == "http://localhost:5055/health"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "needs 'url'"),
        ({"url": "localhost:5055"}, "needs 'url'"),
        ({"url": URL, "timeout": 0}, "'timeout'"),
        ({"url": URL, "timeout": "soon"}, "'timeout'"),
        ({"url": URL, "timeout": float("nan")}, "'timeout'"),
        ({"url": URL, "headers": ["x"]}, "'headers'"),
        ({"url": URL, "basic_auth": {"username": "u"}}, "'basic_auth'"),
        ({"url": URL, "circuit_breaker": {"failure": 3}}, "unknown key(s) failure"),
        ({"url": URL, "circuit_breaker": {"failures": 2.5}}, "whole number"),
        ({"url": URL, "circuit_breaker": {"open_seconds": -1}}, "'open_seconds'"),
        ({"actions_module": "no_such_module"}, "no_such_module"),
        ({"actions_module": "x" * 300}, "neither"),  # longer than a file name may be
        ({"actions_module": "my-actions"}, "'my-actions' is not a Python module name"),
        ({"url": URL, "cafile": "/no/such/ca.pem"}, "cafile '/no/such/ca.pem': no such file"),
        ({"url": URL, "cafile": __file__}, "holds no PEM certificate"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(params: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_action_executor(block(**params), DOMAINS / "restaurant")
    assert needle in str(error.value)
    assert str(error.value).startswith("endpoints.yml:3: ")


def test_cafile_beside_the_project_is_found(tmp_path: Path) -> None:
    bundle = Path(ssl.get_default_verify_paths().openssl_cafile)
    if not bundle.is_file():
        pytest.skip(f"no CA bundle at {bundle}")
    shutil.copy(bundle, tmp_path / "ca.pem")
    executor = create_action_executor(
        block(url="https://localhost:5055/webhook", cafile="ca.pem"), tmp_path
    )
    assert isinstance(executor, HTTPActionExecutor)
    assert isinstance(executor.ssl, ssl.SSLContext)
