"""Who may call the HTTP API: a token, or JWTs with Rasa's ``admin`` and ``user`` roles."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError
from chatbot.server.auth import Auth
from chatbot.server.settings import RateLimit, ServerSettings
from tests.chatbot.server.support import StartServer, say
from tests.helpers import raw_request

TOKEN = "s3cret-token"
SECRET = "a-jwt-secret-long-enough-for-hs512-" + "x" * 40


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def token_for(username: str, role: str, secret: str = SECRET, **claims: Any) -> str:
    return jwt.encode({"user": {"username": username, "role": role}, **claims}, secret, "HS256")


@pytest.fixture
async def secured(start_server: StartServer, restaurant_model: TrainedModel) -> TestClient:
    client = await start_server(
        Agent(restaurant_model),
        enable_api=True,
        auth_token=TOKEN,
        jwt_secret=SECRET,
        rate_limit=None,
    )
    await say(client, "alice", "/greet")  # channels need no API credentials
    await say(client, "bob", "/greet")
    return client


async def test_token_as_bearer_or_query(secured: TestClient) -> None:
    assert (await secured.get("/conversations/alice/tracker", headers=bearer(TOKEN))).status == 200
    assert (await secured.get(f"/conversations/alice/tracker?token={TOKEN}")).status == 200
    assert (await secured.get("/status", headers=bearer(TOKEN))).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        bearer(TOKEN + "x"),
        {"Authorization": TOKEN},  # no scheme
        {"Authorization": f"Basic {TOKEN}"},
        bearer("é-not-ascii"),
    ],
)
async def test_missing_or_wrong_credentials_are_a_401(
    secured: TestClient, headers: dict[str, str]
) -> None:
    response = await secured.get("/conversations/alice/tracker", headers=headers)
    assert response.status == 401
    body = await response.json()
    assert body["reason"] == "NotAuthenticated" and body["code"] == 401


async def test_wrong_query_token_is_a_401(secured: TestClient) -> None:
    assert (await secured.get("/status?token=nope")).status == 401


async def test_admin_jwt_sees_everything(secured: TestClient) -> None:
    admin = bearer(token_for("root", "admin"))
    for path in ("/conversations/alice/tracker", "/conversations/bob/tracker", "/status"):
        assert (await secured.get(path, headers=admin)).status == 200
    response = await secured.post("/model/parse", json={"text": "/greet"}, headers=admin)
    assert response.status == 200


async def test_user_jwt_sees_only_its_own_conversation(secured: TestClient) -> None:
    alice = bearer(token_for("alice", "user"))
    assert (await secured.get("/conversations/alice/tracker", headers=alice)).status == 200
    assert (await secured.get("/conversations/alice/story", headers=alice)).status == 200
    own = await secured.post("/conversations/alice/predict", headers=alice)
    assert own.status == 200
    answer = await secured.post(
        "/conversations/alice/trigger_intent", json={"name": "greet"}, headers=alice
    )
    assert answer.status == 200
    for method, path in [
        ("GET", "/conversations/bob/tracker"),
        ("POST", "/conversations/bob/predict"),
        ("GET", "/conversations/bob/story"),
        ("GET", "/conversations/bob/story?all_sessions=true"),
        ("GET", "/status"),
        ("GET", "/domain"),
        ("POST", "/model/predict"),
        ("PUT", "/model"),
        ("DELETE", "/model"),
    ]:
        response = await secured.request(method, path, headers=alice)
        assert response.status == 403, path
        assert (await response.json())["reason"] == "NotAuthorized"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "messages", {"text": "hello", "sender": "user"}),
        ("POST", "trigger_intent", {"name": "greet"}),
        ("POST", "tracker/events", [{"event": "slot", "name": "cuisine", "value": "thai"}]),
        ("PUT", "tracker/events", [{"event": "action", "name": "action_listen"}]),
        ("POST", "execute", {"name": "utter_greet"}),
        ("POST", "predict", None),
    ],
)
async def test_a_user_jwts_writes_count_against_the_rate_limit_as_its_messages_do(
    start_server: StartServer,
    restaurant_model: TrainedModel,
    method: str,
    path: str,
    body: Any,
) -> None:
    """The user role writes only to its own conversation, but without a limit it could post to
    it as fast as it liked, where the same user on a channel is held to ``--rate-limit``."""
    client = await start_server(
        Agent(restaurant_model),
        enable_api=True,
        jwt_secret=SECRET,
        rate_limit=RateLimit(2, 60.0),
        client_rate_limit=RateLimit(1000, 60.0),
    )
    await say(client, "alice", "/greet")  # POST .../predict needs a conversation
    await say(client, "bob", "/greet")
    alice = bearer(token_for("alice", "user"))
    url = f"/conversations/alice/{path}"
    for _ in range(1):  # its first of two was the channel message above
        response = await client.request(method, url, json=body, headers=alice)
        assert response.status == 200, await response.text()
    refused = await client.request(method, url, json=body, headers=alice)
    assert refused.status == 429
    assert (await refused.json())["reason"] == "TooManyRequests"
    assert float(refused.headers["Retry-After"]) > 0
    # Reading is not limited; the admin (the bot's operator) is not; nor is another user.
    assert (await client.get("/conversations/alice/tracker", headers=alice)).status == 200
    admin = bearer(token_for("root", "admin"))
    assert (await client.request(method, url, json=body, headers=admin)).status == 200
    bob = bearer(token_for("bob", "user"))
    bobs = f"/conversations/bob/{path}"
    assert (await client.request(method, bobs, json=body, headers=bob)).status == 200
    # The same user's channel messages share its budget.
    response = await client.post(
        "/webhooks/rest/webhook", json={"sender": "alice", "message": "hi"}
    )
    assert response.status == 429


async def test_a_user_jwts_writes_count_against_the_per_client_limit(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(
        Agent(restaurant_model),
        enable_api=True,
        jwt_secret=SECRET,
        rate_limit=None,
        client_rate_limit=RateLimit(2, 60.0),
    )
    for user in ("alice", "bob"):  # two users, one address: its budget
        response = await client.post(
            f"/conversations/{user}/trigger_intent",
            json={"name": "greet"},
            headers=bearer(token_for(user, "user")),
        )
        assert response.status == 200
    refused = await client.post(
        "/conversations/carol/trigger_intent",
        json={"name": "greet"},
        headers=bearer(token_for("carol", "user")),
    )
    assert refused.status == 429
    assert "from this address" in (await refused.json())["message"]


@pytest.mark.parametrize(
    "token",
    [
        token_for("root", "admin", secret="another-secret-" + "y" * 60),
        token_for("root", "admin", exp=int(time.time()) - 10),
        jwt.encode({"user": {"username": "root", "role": "admin"}}, SECRET, "HS512"),
        jwt.encode({"user": {"username": "root", "role": "admin"}}, None, "none"),
        "not.a.jwt",
    ],
    ids=["wrong-secret", "expired", "other-algorithm", "unsigned", "garbage"],
)
async def test_invalid_jwts_are_a_401(secured: TestClient, token: str) -> None:
    response = await secured.get("/conversations/alice/tracker", headers=bearer(token))
    assert response.status == 401
    assert (await response.json())["status"] == "failure"


@pytest.mark.parametrize("value", [b"\xff\xfe.abc.def", b"\xed\xa0\x80", b"a.b\xc3\xa9.c"])
async def test_a_bearer_token_that_is_not_ascii_is_a_401(secured: TestClient, value: bytes) -> None:
    # Header bytes that are not UTF-8 reach the server as surrogate escapes, which PyJWT cannot
    # even encode: a 401, like any other token that is not a JWT of ours.
    url = str(secured.make_url("/"))
    headers = {"Authorization": b"Bearer " + value}
    assert await raw_request(url, "GET", "/conversations/alice/tracker", headers) == 401


async def test_expired_jwt_says_so(secured: TestClient) -> None:
    expired = token_for("root", "admin", exp=int(time.time()) - 10)
    response = await secured.get("/status", headers=bearer(expired))
    assert "expired" in (await response.json())["message"]


@pytest.mark.parametrize("role", ["guest", None, 5])
async def test_jwt_without_a_known_role_is_a_403(secured: TestClient, role: object) -> None:
    token = jwt.encode({"user": {"username": "alice", "role": role}}, SECRET, "HS256")
    response = await secured.get("/conversations/alice/tracker", headers=bearer(token))
    assert response.status == 403


async def test_jwt_only_rejects_the_query_token(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(Agent(restaurant_model), enable_api=True, jwt_secret=SECRET)
    assert (await client.get(f"/status?token={SECRET}")).status == 401
    assert (await client.get("/status", headers=bearer(token_for("a", "admin")))).status == 200


def test_unknown_jwt_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HS999"):
        Auth(jwt_secret="x" * 40, jwt_method="HS999")


@pytest.mark.parametrize(
    ("settings", "host"),
    [
        (ServerSettings(), "0.0.0.0"),
        (ServerSettings(enable_api=True), "127.0.0.1"),
        (ServerSettings(enable_api=True, host="10.1.2.3"), "127.0.0.1"),
        (ServerSettings(enable_api=True, host="::1"), "::1"),
        (ServerSettings(enable_api=True, host="localhost"), "localhost"),
        (ServerSettings(enable_api=True, auth_token="t"), "0.0.0.0"),
        (ServerSettings(enable_api=True, jwt_secret="s"), "0.0.0.0"),
    ],
)
def test_an_open_api_listens_on_loopback_only(settings: ServerSettings, host: str) -> None:
    assert settings.effective_host() == host


async def test_rs256_jwts_are_checked_with_the_public_key(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    """``--jwt-method RS256 --jwt-secret <public key PEM>``: tokens signed by the key pair's
    private half pass, others (another key pair, HS256 with the public key as a secret) do not."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = await start_server(
        Agent(restaurant_model), enable_api=True, jwt_secret=public_pem, jwt_method="RS256"
    )
    admin = {"user": {"username": "root", "role": "admin"}}
    good = jwt.encode(admin, private, "RS256")
    assert (await client.get("/status", headers=bearer(good))).status == 200
    for forged in (jwt.encode(admin, other, "RS256"), _hs256_signed(admin, public_pem)):
        assert (await client.get("/status", headers=bearer(forged))).status == 401


def _hs256_signed(claims: dict[str, Any], secret: str) -> str:
    """The key-confusion attack: HS256 with the public key as the secret (PyJWT will not make
    one, so it is made by hand)."""
    import base64
    import hashlib
    import hmac
    import json

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(mac)}"
