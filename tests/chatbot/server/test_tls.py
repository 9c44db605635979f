"""HTTPS from ``chatbot run`` itself (Rasa's ``--ssl-certificate``, ``--ssl-keyfile``,
``--ssl-ca-file``, ``--ssl-password``) and ``--log-file``: a real process on a real socket,
certificates made by the openssl command, and every mistake in them one line that names the
option and the file."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from chatbot.agent import TrainedModel
from chatbot.errors import ConfigError
from chatbot.server.tls import server_ssl_context
from tests.chatbot.server.test_serve import WAIT, start_chatbot
from tests.helpers import ROOT, free_port
from tests.services import services_required

PASSWORD = "correct horse"


def _openssl(*args: str, folder: Path) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A certificate for 127.0.0.1 with its key (plain, encrypted, and both in one file), and
    another certificate with its own key."""
    if shutil.which("openssl") is None:
        reason = "the openssl command is not installed (.ci/run installs it)"
        if services_required():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("certs")
    for name, subject in (("server", "/CN=127.0.0.1"), ("other", "/CN=other")):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", f"{name}.key", "-out", f"{name}.pem",
            folder=folder,
        )  # fmt: skip
    _openssl(
        "pkey", "-in", "server.key", "-aes256", "-passout", f"pass:{PASSWORD}",
        "-out", "encrypted.key",
        folder=folder,
    )  # fmt: skip
    (folder / "combined.pem").write_text(
        (folder / "server.pem").read_text() + (folder / "server.key").read_text()
    )
    return folder


def client_context(certs: Path) -> ssl.SSLContext:
    """A client that trusts only our self-signed certificate."""
    return ssl.create_default_context(cafile=str(certs / "server.pem"))


def test_a_certificate_and_its_key_make_a_server_context(certs: Path) -> None:
    for args in (
        (certs / "server.pem", certs / "server.key"),
        (certs / "combined.pem", None),  # the key in the certificate's file
        (certs / "server.pem", certs / "encrypted.key", None, PASSWORD),
        (certs / "server.pem", certs / "server.key", certs / "other.pem"),
    ):
        context = server_ssl_context(*args)
        assert isinstance(context, ssl.SSLContext)
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert server_ssl_context(None) is None  # plain HTTP


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("server.pem", "other.key"),
            "--ssl-keyfile {d}/other.key: the private key does not belong to the certificate "
            "in --ssl-certificate {d}/server.pem",
        ),
        (
            ("server.pem", "encrypted.key"),
            "--ssl-keyfile {d}/encrypted.key: the private key is encrypted: give its "
            "--ssl-password",
        ),
        (
            ("server.pem", "encrypted.key", None, "wrong"),
            "--ssl-keyfile {d}/encrypted.key: wrong --ssl-password for the private key",
        ),
        (
            ("server.pem",),
            "--ssl-certificate {d}/server.pem: no PEM private key in it: give the key's file "
            "with --ssl-keyfile",
        ),
        (
            ("server.key", "server.pem"),
            "--ssl-certificate {d}/server.key: no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ),
        (("missing.pem", "server.key"), "--ssl-certificate {d}/missing.pem: no such file"),
        (("server.pem", "missing.key"), "--ssl-keyfile {d}/missing.key: no such file"),
        ((".", "server.key"), "--ssl-certificate {d}: a folder, not a file"),
        (
            ("server.pem", "server.key", "server.key"),
            "--ssl-ca-file {d}/server.key: not PEM CA certificates",
        ),
        ((None, "server.key"), "--ssl-keyfile given without --ssl-certificate"),
        ((None, None, None, "pw"), "--ssl-password given without --ssl-certificate"),
    ],
)
def test_a_mistake_in_the_tls_options_names_the_option_and_the_file(
    certs: Path, args: tuple[str | None, ...], expected: str
) -> None:
    paths = [certs / a if a is not None else None for a in args[:3]]
    password = args[3] if len(args) > 3 else None
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(*paths, password=password)  # type: ignore[arg-type]
    assert str(caught.value).startswith(expected.format(d=certs))


async def test_chatbot_run_serves_https_and_appends_its_log_to_a_file(
    tmp_path: Path, certs: Path, restaurant_model: TrainedModel
) -> None:
    (tmp_path / "models").mkdir()
    restaurant_model.to_file(tmp_path / "models" / "restaurant.model")
    log_file = tmp_path / "logs" / "chatbot.log"
    log_file.parent.mkdir()
    log_file.write_text("an earlier line\n")
    port = free_port()
    process, stdout, stderr, _ = await start_chatbot(
        tmp_path,
        port,
        "--ssl-certificate", str(certs / "server.pem"),
        "--ssl-keyfile", str(certs / "encrypted.key"),
        "--ssl-password", PASSWORD,
        "--log-file", str(log_file),
        "--host", "127.0.0.1",
    )  # fmt: skip
    try:
        assert f"https://127.0.0.1:{port}" in await stdout.wait_for("is up")
        url = f"https://127.0.0.1:{port}/webhooks/rest/webhook"
        async with aiohttp.ClientSession() as session:
            greet = {"sender": "tls-user", "message": "/greet"}
            async with session.post(url, json=greet, ssl=client_context(certs)) as response:
                assert response.status == 200
                assert (await response.json())[0]["recipient_id"] == "tls-user"
            # Plain HTTP on the HTTPS port gets no answer from the bot.
            with pytest.raises(aiohttp.ClientError):
                async with session.post(url.replace("https", "http"), json=greet) as response:
                    await response.read()
            # A client that does not trust the certificate refuses the connection.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(url, json=greet, ssl=ssl.create_default_context())
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), WAIT)
        await stdout.close()
        await stderr.close()
    assert "Traceback" not in stderr.text
    lines = log_file.read_text().splitlines()
    assert lines[0] == "an earlier line"  # appended, not overwritten
    turn = next(line for line in lines if "turn conversation=tls-user" in line)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO chatbot\.server\.gate: ", turn)
    assert "turn conversation=tls-user" in stderr.text  # stderr still has it too


def test_chatbot_run_with_a_wrong_key_says_so_in_one_line(tmp_path: Path, certs: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "chatbot", "run", "--project", str(tmp_path),
            "--port", str(free_port()),
            "--ssl-certificate", str(certs / "server.pem"),
            "--ssl-keyfile", str(certs / "other.key"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: --ssl-keyfile {certs}/other.key: the private key does not belong to the "
        f"certificate in --ssl-certificate {certs}/server.pem"
    )


def test_an_unwritable_log_file_says_so_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "chatbot", "run", "--project", str(tmp_path),
            "--log-file", str(tmp_path / "no-such-folder" / "chatbot.log"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: --log-file {tmp_path}/no-such-folder/chatbot.log: cannot write it: "
        "No such file or directory"
    )
