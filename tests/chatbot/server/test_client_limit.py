"""The per-client rate limit (``--client-rate-limit``): messages per client address, whatever
senders it names; the address read from X-Forwarded-For only where the peer is a trusted proxy."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from chatbot.agent import Agent, TrainedModel
from chatbot.errors import ConfigError
from chatbot.server.clients import TrustedProxies
from chatbot.server.settings import RateLimit
from tests.chatbot.server.support import StartServer, say
from tests.test_cli import chatbot

WEBHOOK = "/webhooks/rest/webhook"


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ([], "127.0.0.1", None, "127.0.0.1"),
        ([], "127.0.0.1", "203.0.113.9", "127.0.0.1"),  # an untrusted peer's header is ignored
        (["127.0.0.1"], "127.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["127.0.0.1"], "198.51.100.7", "203.0.113.9", "198.51.100.7"),
        # What the client claims left of the proxy's own entry is not believed.
        (["127.0.0.1"], "127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        # Through two proxies of the operator's: the right-most address that is none of them.
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        (["127.0.0.1, 10.0.0.0/8"], "127.0.0.1", "10.9.9.9,10.1.2.3", "10.9.9.9"),  # all trusted
        (["*"], "198.51.100.7", "203.0.113.9", "203.0.113.9"),
        (["::1"], "::1", "2001:db8::5", "2001:db8::5"),
        (["127.0.0.1"], "127.0.0.1", "", "127.0.0.1"),
        (["127.0.0.1"], None, "203.0.113.9", None),  # a socket without an address
    ],
)
def test_the_client_address(
    trusted: list[str], peer: str | None, forwarded: str | None, client: str | None
) -> None:
    assert TrustedProxies(trusted).client(peer, forwarded) == client


@pytest.mark.parametrize("spec", ["proxy.local", "10.0.0.0/33", "1.2.3"])
def test_a_bad_trusted_proxy_is_a_config_error_naming_it(spec: str) -> None:
    with pytest.raises(ConfigError, match=f"--forwarded-allow-ips: '{spec}' is not an IP"):
        TrustedProxies([f"127.0.0.1,{spec}"])


async def test_one_address_is_limited_whatever_senders_it_names(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    agent = Agent(restaurant_model)
    client = await start_server(agent, rate_limit=None, client_rate_limit=RateLimit(3, 60.0))
    for sender in ("a", "b", "c"):
        await say(client, sender, "/greet")
    refused = await client.post(WEBHOOK, json={"sender": "d", "message": "/greet"})
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "20"
    body = await refused.json()
    assert body["reason"] == "TooManyRequests"
    assert "too many messages from this address" in body["message"]
    assert (await agent.store.load("d")).events == []  # refused before any turn ran
    metrics = await (await client.get("/metrics")).text()
    assert "chatbot_rate_limited_total 1.0" in metrics


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    trusted = await start_server(
        Agent(restaurant_model),
        rate_limit=None,
        client_rate_limit=RateLimit(1, 60.0),
        forwarded_allow_ips=("127.0.0.1",),
    )

    async def post(server: TestClient, sender: str, address: str) -> int:
        headers = {"X-Forwarded-For": f"6.6.6.{sender[-1]}, {address}"}
        body = {"sender": sender, "message": "/greet"}
        response = await server.post(WEBHOOK, json=body, headers=headers)
        return response.status

    assert await post(trusted, "s1", "203.0.113.1") == 200
    assert await post(trusted, "s2", "203.0.113.2") == 200
    assert await post(trusted, "s3", "203.0.113.1") == 429  # the same client, a new sender
    # Without the proxy trusted, the header is the client's own claim: one address for all.
    untrusted = await start_server(
        Agent(restaurant_model), rate_limit=None, client_rate_limit=RateLimit(1, 60.0)
    )
    assert await post(untrusted, "s1", "203.0.113.1") == 200
    assert await post(untrusted, "s2", "203.0.113.2") == 429


async def test_the_per_sender_limit_still_holds_beside_it(
    start_server: StartServer, restaurant_model: TrainedModel
) -> None:
    client = await start_server(
        Agent(restaurant_model),
        rate_limit=RateLimit(1, 60.0),
        client_rate_limit=RateLimit(10, 60.0),
    )
    await say(client, "a", "/greet")
    refused = await client.post(WEBHOOK, json={"sender": "a", "message": "/greet"})
    assert refused.status == 429
    assert "from this address" not in (await refused.json())["message"]
    await say(client, "b", "/greet")


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--client-rate-limit", "fast", "--client-rate-limit 'fast': write it as COUNT/PERIOD"),
        ("--forwarded-allow-ips", "10.0.0.0/99", "--forwarded-allow-ips: '10.0.0.0/99' is not"),
    ],
)
def test_bad_options_stop_the_server_with_one_line(option: str, value: str, needle: str) -> None:
    result = chatbot("run", "--project", "domains/moodbot", option, value, timeout=60)
    assert result.returncode != 0
    assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
