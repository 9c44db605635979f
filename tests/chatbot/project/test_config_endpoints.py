from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chatbot.errors import ProjectErrors
from chatbot.project.config_reader import read_config
from chatbot.project.endpoints_reader import read_credentials, read_endpoints

from .conftest import write


def test_config(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yml",
        """\
        recipe: default.v1
        language: de
        assistant_id: my_bot
        pipeline:
          - name: WhitespaceTokenizer
          - name: DIETClassifier
            epochs: 100
            constrain_similarities: true
        policies:
          - name: RulePolicy
            core_fallback_threshold: 0.3
        """,
    )
    config = read_config(path)
    assert config.language == "de"
    assert config.assistant_id == "my_bot"
    assert [c.name for c in config.pipeline] == ["WhitespaceTokenizer", "DIETClassifier"]
    assert config.component("DIETClassifier").params == {  # type: ignore[union-attr]
        "epochs": 100,
        "constrain_similarities": True,
    }
    assert config.pipeline[1].origin.line == 6
    assert config.policy("RulePolicy").params == {"core_fallback_threshold": 0.3}  # type: ignore[union-attr]
    assert config.file == str(path)


@pytest.mark.parametrize(
    "text",
    ["", "language: en\n", "language: en\npipeline:\npolicies:\n", "pipeline: []\npolicies: []\n"],
)
def test_config_without_pipeline_or_policies(tmp_path: Path, text: str) -> None:
    config = read_config(write(tmp_path / "config.yml", text))
    assert config.language == "en"
    assert config.pipeline == () and config.policies == ()


def test_config_keys_rasa_takes_are_read_or_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rasa's config schema takes any key: `version` (financial-demo's config.yml has one) is
    read silently, another key is one warning line; a misspelling of ours stays an error."""
    text = 'version: "3.1"\nlanguage: de\ncore_settings: {x: 1}\n'
    with caplog.at_level(logging.WARNING):
        config = read_config(write(tmp_path / "config.yml", text))
    assert config.language == "de"
    [warning] = [r.getMessage() for r in caplog.records]
    assert "config.yml:3: unknown key in the config (key 'core_settings')" in warning


def test_a_format_version_in_endpoints_and_credentials_is_no_block(tmp_path: Path) -> None:
    text = 'version: "3.1"\naction_endpoint:\n  url: http://localhost:5055/webhook\n'
    endpoints = read_endpoints(write(tmp_path / "endpoints.yml", text))
    assert set(endpoints.blocks) == {"action_endpoint"}
    credentials = read_credentials(write(tmp_path / "credentials.yml", 'version: "3.1"\nrest:\n'))
    assert set(credentials.channels) == {"rest"}


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("pipeline:\n  - epochs: 3\n", 2, "an entry of 'pipeline' has no 'name'"),
        ("policies:\n  - RulePolicy\n", 2, "Write '- name: RulePolicy'"),
        ("pipeline: WhitespaceTokenizer\n", 1, "'pipeline' must be a list"),
        ("recipe: graph.v1\n", 1, "unsupported recipe (key 'recipe', value 'graph.v1')"),
        ("langauge: en\n", 1, "Did you mean 'language'?"),
        (
            "policies:\n  - name: TEDPolicy\n    2.5: 100\n",
            3,
            "'TEDPolicy': a setting's name must be text (key '2.5')",
        ),
    ],
)
def test_config_errors(tmp_path: Path, text: str, line: int, needle: str) -> None:
    with pytest.raises(ProjectErrors) as info:
        read_config(write(tmp_path / "config.yml", text))
    [error] = info.value.errors
    assert f"config.yml:{line}:" in str(error)
    assert needle in str(error)


def test_endpoints_with_env_vars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTION_HOST", "actions.local")
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    path = write(
        tmp_path / "endpoints.yml",
        """\
        action_endpoint:
          url: "http://${ACTION_HOST}:5055/webhook"
        tracker_store:
          type: sql
          password: ${DB_PASSWORD}
          hosts: ["${ACTION_HOST}", other]
          port: 5432
        lock_store:
        """,
    )
    endpoints = read_endpoints(path)
    assert endpoints.action_endpoint is not None
    assert endpoints.action_endpoint.params == {"url": "http://actions.local:5055/webhook"}
    assert endpoints.action_endpoint.origin.line == 1
    store = endpoints.tracker_store
    assert store is not None and store.type == "sql"
    assert store.params["password"] == "s3cret"
    assert store.params["hosts"] == ["actions.local", "other"]
    assert store.params["port"] == 5432
    assert endpoints.lock_store is None  # a block with no value is absent, as in Rasa


def test_env_vars_from_a_given_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "endpoints.yml", "models:\n  url: ${URL}/models\n")
    endpoints = read_endpoints(path, env={"URL": "http://x"})
    assert endpoints.blocks["models"].params == {"url": "http://x/models"}


@pytest.mark.parametrize("reader", [read_endpoints, read_credentials])
def test_unset_env_var_names_file_line_and_variable(tmp_path: Path, reader: object) -> None:
    path = write(
        tmp_path / "secrets.yml",
        """\
        slack:
          slack_token: ${SLACK_TOKEN}
          slack_signing_secret: "${SIGNING_SECRET}"
        """,
    )
    with pytest.raises(ProjectErrors) as info:
        reader(path, env={"SLACK_TOKEN": "t"})  # type: ignore[operator]
    [error] = info.value.errors
    assert "secrets.yml:3:" in str(error)
    assert "environment variable 'SIGNING_SECRET' is not set" in str(error)
    assert "slack_signing_secret" in str(error)


def test_credentials(tmp_path: Path) -> None:
    path = write(
        tmp_path / "credentials.yml",
        """\
        rest:
        socketio:
          user_message_evt: user_uttered
          bot_message_evt: bot_uttered
        telegram:
          access_token: ${TG}
        """,
    )
    credentials = read_credentials(path, env={"TG": "123:abc"})
    assert credentials.channels["rest"].params == {}
    assert credentials.channels["socketio"].params["bot_message_evt"] == "bot_uttered"
    assert credentials.channels["telegram"].params == {"access_token": "123:abc"}
    assert credentials.channels["telegram"].origin.line == 5


def test_block_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ProjectErrors) as info:
        read_endpoints(write(tmp_path / "endpoints.yml", "action_endpoint: http://x\n"))
    assert "endpoints.yml:1: 'action_endpoint' must be a mapping" in str(info.value)


@pytest.mark.parametrize("reader", [read_endpoints, read_credentials])
def test_setting_names_must_be_text(tmp_path: Path, reader: object) -> None:
    path = write(tmp_path / "bot.yml", "socketio:\n  user_message_evt: u\n  3: b\n")
    with pytest.raises(ProjectErrors) as info:
        reader(path)  # type: ignore[operator]
    [error] = info.value.errors
    assert str(error).startswith(f"{path}:3: 'socketio': a setting's name must be text (key '3')")


def test_an_endpoint_blocks_basic_auth_is_its_authorization_header() -> None:
    """Rasa's EndpointConfig keys, as every client that takes them sends them (callback
    channel, model server): headers, with basic_auth as the Authorization header."""
    from chatbot.project.endpoints import EndpointBlock

    block = EndpointBlock(
        "callback",
        {"headers": {"X-Key": 1}, "basic_auth": {"username": "ann", "password": "p:w"}},
    )
    assert block.request_headers() == {"X-Key": "1", "Authorization": "Basic YW5uOnA6dw=="}
    assert EndpointBlock("models", {"url": "http://x"}).request_headers() == {}
