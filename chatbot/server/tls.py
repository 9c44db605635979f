"""HTTPS without a proxy in front: the TLS context of ``chatbot run --ssl-certificate ...``.

Rasa's options and meaning: a certificate (PEM, the chain after the server's own certificate),
its private key (in the certificate's file when no key file is given), the key's password, and
CA certificates that Rasa loads into the context (``--ssl-ca-file``; clients are not asked for a
certificate, as with Rasa). Every problem is a ``ConfigError`` that names the option and the
file, raised before the server binds its port.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from chatbot.errors import ConfigError


def server_ssl_context(
    certificate: Path | None,
    keyfile: Path | None = None,
    ca_file: Path | None = None,
    password: str | None = None,
) -> ssl.SSLContext | None:
    """The server's TLS context, or None (plain HTTP) without a certificate."""
    if certificate is None:
        given = [
            name
            for name, value in (
                ("--ssl-keyfile", keyfile),
                ("--ssl-ca-file", ca_file),
                ("--ssl-password", password),
            )
            if value is not None
        ]
        if given:
            raise ConfigError(f"{', '.join(given)} given without --ssl-certificate")
        return None
    for option, path in (
        ("--ssl-certificate", certificate),
        ("--ssl-keyfile", keyfile),
        ("--ssl-ca-file", ca_file),
    ):
        if path is not None and not path.is_file():
            problem = "a folder, not a file" if path.is_dir() else "no such file"
            raise ConfigError(f"{option} {path}: {problem}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    key_shown = (
        f"--ssl-keyfile {keyfile}" if keyfile is not None else f"--ssl-certificate {certificate}"
    )
    try:
        # Without --ssl-password, an encrypted key is an error, not OpenSSL's prompt on the
        # terminal (which would hold up a server started by a service manager).
        context.load_cert_chain(
            certificate,
            keyfile=keyfile,
            password=password if password is not None else _no_password,
        )
    except _PasswordNeeded:
        raise ConfigError(
            f"{key_shown}: the private key is encrypted: give its --ssl-password"
        ) from None
    except ssl.SSLError as error:
        raise ConfigError(_why(error, certificate, keyfile, password)) from None
    except OSError as error:  # unreadable
        raise ConfigError(f"--ssl-certificate {certificate}: {error.strerror or error}") from None
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (ssl.SSLError, OSError) as error:
            raise ConfigError(
                f"--ssl-ca-file {ca_file}: not PEM CA certificates ({_reason(error)})"
            ) from None
    return context


def _why(error: ssl.SSLError, certificate: Path, keyfile: Path | None, password: str | None) -> str:
    """What is wrong with a certificate and its key that OpenSSL refused, in words: OpenSSL says
    "PEM lib" for most of it, so the files are looked at."""
    cert_text = _text(certificate)
    key_option, key_path = (
        ("--ssl-keyfile", keyfile) if keyfile else ("--ssl-certificate", certificate)
    )
    key_text = _text(key_path)
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        return f"--ssl-certificate {certificate}: no PEM certificate (-----BEGIN CERTIFICATE-----)"
    if "PRIVATE KEY-----" not in key_text:
        hint = "" if keyfile else ": give the key's file with --ssl-keyfile"
        return f"{key_option} {key_path}: no PEM private key in it{hint}"
    if "ENCRYPTED" in key_text and password is not None:
        return f"{key_option} {key_path}: wrong --ssl-password for the private key"
    reason = _reason(error).replace("_", " ").lower()
    if "mismatch" in reason:
        return (
            f"{key_option} {key_path}: the private key does not belong to the certificate in "
            f"--ssl-certificate {certificate}"
        )
    return f"--ssl-certificate {certificate} with {key_option} {key_path}: {_reason(error)}"


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


class _PasswordNeeded(Exception):
    pass


def _no_password() -> str:
    raise _PasswordNeeded


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error)
