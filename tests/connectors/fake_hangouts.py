"""A fake of Google's certificate endpoint for Google Chat's account on 127.0.0.1, and tokens
signed as Google Chat signs them: an RS256 JWT by ``chat@system.gserviceaccount.com`` for the
app's project number, its key id naming one of the account's published X.509 certificates
(Google's "Verify requests from Google Chat")."""

from __future__ import annotations

import datetime
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PROJECT = "123456789012"
ISSUER = "chat@system.gserviceaccount.com"
KID = "0ab1c2d3e4f5"
USER = "users/102651148563033885715"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class FakeGoogleCerts:
    def __init__(self) -> None:
        self.certs = {KID: certificate(KEY)}
        self.fetches = 0
        self.app = web.Application()
        self.app.router.add_get("/x509/chat", self.serve_certs)

    async def serve_certs(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response(self.certs)


def token(key: rsa.RSAPrivateKey = KEY, kid: str = KID, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": PROJECT, "iat": now, "exp": now + 3600, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, "RS256", {"kid": kid})
