"""The Bot Framework channel (Teams, Web Chat) against fake Microsoft services on loopback:
activities signed with a key the fake publishes, answers sent to the fake connector with the
token the fake login issues."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from chatbot.agent import Agent
from chatbot.errors import ConfigError
from chatbot.server.keys import OUTPUTS
from connectors.botframework import BotFrameworkChannel
from connectors.botframework_messages import activities
from connectors.outbound import RetryPolicy
from tests.connectors.fake_botframework import (
    APP_ID,
    APP_PASSWORD,
    BOT,
    BOT_TOKEN,
    CONVERSATION,
    OTHER_KEY,
    USER,
    FakeMicrosoft,
    jwk,
    message,
    token,
)
from tests.connectors.servers import ServeChannel, Served, serve

FAST_RETRIES = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0, timeout=5.0)
CREDENTIALS = {"app_id": APP_ID, "app_password": APP_PASSWORD}


@dataclass
class Teams:
    served: Served
    microsoft: FakeMicrosoft
    channel: BotFrameworkChannel
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"{self.served.url}/webhooks/botframework/webhook"

    async def post(self, activity: Any, authorization: str | None) -> int:
        headers = {"Authorization": authorization} if authorization is not None else {}
        async with self.http.post(self.url, json=activity, headers=headers) as response:
            await response.read()
            return response.status

    def activity(self, text: str, **more: Any) -> dict[str, Any]:
        return message(text, self.microsoft.url, **more)

    async def say(self, text: str, **more: Any) -> None:
        activity = self.activity(text, **more)
        assert await self.post(activity, f"Bearer {token(self.microsoft.url)}") == 200

    async def sent(self, count: int) -> list[dict[str, Any]]:
        await self.microsoft.calls.wait_count(count)
        return self.microsoft.sent()

    async def finish(self) -> None:
        await self.channel.workers.close(grace=10)


@pytest.fixture
def teams_at(serve_channel: ServeChannel) -> Callable[..., AbstractAsyncContextManager[Teams]]:
    @asynccontextmanager
    async def start(**credentials: Any) -> AsyncIterator[Teams]:
        microsoft = FakeMicrosoft()
        async with serve(microsoft.app) as fake:
            microsoft.url = fake.url
            channel = BotFrameworkChannel.from_credentials(
                {
                    **CREDENTIALS,
                    "login_url": fake.url,
                    "openid_url": f"{fake.url}/v1/.well-known/openidconfiguration",
                    **credentials,
                }
            )
            channel.api.policy = FAST_RETRIES
            async with serve_channel(channel) as served, aiohttp.ClientSession() as http:
                yield Teams(served, microsoft, channel, http)

    return start


async def user_texts(agent: Agent, sender: str = USER) -> list[str]:
    stored = await agent.store.load(sender)
    return [e["text"] for e in stored.events if e["event"] == "user"]


async def test_a_teams_conversation_with_card_buttons(teams_at: Any, agent: Agent) -> None:
    async with teams_at() as teams:
        await teams.say("/greet")
        (greeting,) = await teams.sent(1)
        call = teams.microsoft.calls.items[0]
        assert call["conversation"] == CONVERSATION["id"]
        assert greeting["type"] == "message" and greeting["text"].startswith(("Hello", "Hi"))
        assert greeting["from"] == BOT and greeting["recipient"] == {"id": USER}
        assert greeting["conversation"] == CONVERSATION
        (request,) = teams.microsoft.token_requests.items
        assert request == {
            "tenant": "botframework.com",
            "grant_type": "client_credentials",
            "client_id": APP_ID,
            "client_secret": APP_PASSWORD,
            "scope": "https://api.botframework.com/.default",
        }

        await teams.say("/request_restaurant")
        card = (await teams.sent(2))[1]
        (hero,) = card["attachments"]
        assert hero["contentType"] == "application/vnd.microsoft.card.hero"
        assert hero["content"]["subtitle"] == "What cuisine would you like?"
        assert hero["content"]["buttons"][0] == {
            "type": "messageBack",
            "title": "Italian",
            "text": '/inform{"cuisine": "italian"}',
            "displayText": "Italian",
            "value": {"payload": '/inform{"cuisine": "italian"}'},
        }
        # A click: Teams sends the action's text, or only its value.
        await teams.say("", value={"payload": '/inform{"cuisine": "italian"}'})
        await teams.sent(3)
        # In a channel the bot is @mentioned: the mention is not part of the message.
        await teams.say('<at>RestaurantBot</at> /inform{"number": 3}')
        await teams.sent(4)
        await teams.finish()
        assert len(teams.microsoft.token_requests.items) == 1  # the token is reused
    assert await user_texts(agent) == [
        "/greet",
        "/request_restaurant",
        '/inform{"cuisine": "italian"}',
        '/inform{"number": 3}',
    ]


async def test_activities_without_a_valid_token_are_refused_and_never_processed(
    teams_at: Any, agent: Agent
) -> None:
    async with teams_at() as teams:
        url = teams.microsoft.url
        forged = {
            "no header": None,
            "not bearer": f"Basic {token(url)}",
            "not a jwt": "Bearer not-a-jwt",
            "unknown key": f"Bearer {token(url, key=OTHER_KEY, kid='other')}",
            "wrong key": f"Bearer {token(url, key=OTHER_KEY)}",  # the published kid
            "other bot": f"Bearer {token(url, aud='another-app-id')}",
            "other issuer": f"Bearer {token(url, iss='https://sts.windows.net/x/')}",
            "expired": f"Bearer {token(url, exp=1_700_000_000)}",
            "no expiry": f"Bearer {token(url, exp=None)}",
            # A token for another service URL: the bot would send its own token there.
            "other service": f"Bearer {token('https://evil.example/')}",
            "no service": f"Bearer {token(url, serviceUrl=None)}",
        }
        for name, authorization in forged.items():
            assert await teams.post(teams.activity("/greet"), authorization) == 401, name
        # The published key, but not endorsed for the activity's channel.
        activity = teams.activity("/greet", channelId="slack")
        assert await teams.post(activity, f"Bearer {token(url)}") == 401
        await teams.say("/goodbye")
        await teams.sent(1)
        await teams.finish()
    assert await user_texts(agent) == ["/goodbye"]


async def test_a_key_rotated_in_is_fetched_again(teams_at: Any, agent: Agent) -> None:
    async with teams_at() as teams:
        await teams.say("/greet")
        await teams.sent(1)
        assert teams.microsoft.key_fetches == 1
        teams.microsoft.keys.append(jwk(OTHER_KEY, "rotated", ["msteams"]))
        teams.channel.checker.keys.fetched -= 600  # as if the last fetch were 10 minutes ago
        signed = token(teams.microsoft.url, key=OTHER_KEY, kid="rotated")
        assert await teams.post(teams.activity("/goodbye"), f"Bearer {signed}") == 200
        await teams.sent(2)
        assert teams.microsoft.key_fetches == 2
        # An unknown key id soon after a fetch does not fetch again (no refetch storm).
        unknown = token(teams.microsoft.url, key=OTHER_KEY, kid="unknown")
        assert await teams.post(teams.activity("/greet"), f"Bearer {unknown}") == 401
        assert teams.microsoft.key_fetches == 2


async def test_other_activities_and_repeats_are_acknowledged_and_ignored(
    teams_at: Any, agent: Agent
) -> None:
    async with teams_at() as teams:
        auth = f"Bearer {token(teams.microsoft.url)}"
        update = {**teams.activity(""), "type": "conversationUpdate", "membersAdded": [BOT]}
        assert await teams.post(update, auth) == 200
        assert await teams.post({**teams.activity("/greet"), "type": "typing"}, auth) == 200
        assert await teams.post(teams.activity("   "), auth) == 200
        assert await teams.post(teams.activity("/greet", **{"from": {"id": 5}}), auth) == 200
        assert await teams.post(teams.activity("/greet", conversation="x"), auth) == 200
        assert await teams.post(teams.activity("/greet", serviceUrl=None), auth) == 401
        repeated = teams.activity("/greet")
        for _ in range(3):
            assert await teams.post(repeated, auth) == 200
        async with teams.http.post(teams.url, data=b"{", headers={"Authorization": auth}) as r:
            assert r.status == 400
        await teams.finish()
        assert len(teams.microsoft.sent()) == 1
    assert await user_texts(agent) == ["/greet"]


async def test_a_file_the_user_sends_is_the_messages_metadata_as_rasas(
    teams_at: Any, agent: Agent
) -> None:
    """Rasa's channel puts an activity's attachments in the message's metadata, and a message
    of attachments alone is one without text (ours left both out)."""
    attachment = {
        "contentType": "application/vnd.microsoft.teams.file.download.info",
        "contentUrl": "https://contoso.example/report.pdf",
        "name": "report.pdf",
    }
    async with teams_at() as teams:
        auth = f"Bearer {token(teams.microsoft.url)}"
        assert await teams.post(teams.activity("", attachments=[attachment]), auth) == 200
        await teams.finish()
    stored = await agent.store.load(USER)
    (user,) = [e for e in stored.events if e["event"] == "user"]
    assert user["text"] == "" and user["metadata"] == {"attachments": [attachment]}


async def test_wrong_app_credentials_are_logged_without_the_secret(
    teams_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with teams_at(app_password="not-the-secret") as teams:
        await teams.say("/greet")
        await teams.microsoft.token_requests.wait_count(1)
        await teams.finish()
        assert teams.microsoft.attempts.items == []
    assert "the login refused the app's credentials (AADSTS7000215" in caplog.text
    assert "not-the-secret" not in caplog.text and APP_PASSWORD not in caplog.text


async def test_connector_failures_are_retried_and_refusals_logged(
    teams_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    async with teams_at() as teams:
        teams.microsoft.answers = [(503, {"error": {"code": "ServiceError", "message": "busy"}})]
        await teams.say("/greet")
        await teams.sent(1)
        forbidden = {"error": {"code": "BotNotInConversationRoster", "message": "not a member"}}
        teams.microsoft.answers = [(403, forbidden)]
        await teams.say("/goodbye")
        await teams.microsoft.attempts.wait_count(3)
        await teams.finish()
        assert len(teams.microsoft.attempts.items) == 3
    assert "HTTP 503; retry 1 of 2" in caplog.text
    assert "botframework send: refused (not a member)" in caplog.text
    assert BOT_TOKEN not in caplog.text


async def test_a_reminder_goes_where_the_user_last_wrote(teams_at: Any) -> None:
    async with teams_at() as teams:
        send = teams.served.app[OUTPUTS]["botframework"]
        await send("29:stranger", [{"text": "lost"}], {})  # never wrote: nowhere to send
        await teams.say("/greet")
        await teams.sent(1)
        await send(USER, [{"recipient_id": USER, "text": "Your table is ready."}], {})
        reminder = (await teams.sent(2))[1]
        assert reminder["text"] == "Your table is ready."
        assert reminder["conversation"] == CONVERSATION
        assert len(teams.microsoft.sent()) == 2


def test_bot_messages_as_activities() -> None:
    assert [a["text"] for a in activities({"text": "One.\n\nTwo."})] == ["One.", "Two."]
    action = {"type": "openUrl", "title": "Menu", "value": "https://example.com/menu"}
    (card,) = activities({"text": "See", "buttons": [action]})
    assert card["attachments"][0]["content"]["buttons"] == [action]
    (image,) = activities({"image": "https://x.example/a.png"})
    assert image["attachments"][0]["content"] == {"images": [{"url": "https://x.example/a.png"}]}
    adaptive = {
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {}}]
    }
    assert activities({"custom": adaptive}) == [{"type": "message", "text": "", **adaptive}]
    json.dumps(activities({"text": "x", "buttons": [{"title": "A", "payload": "/a"}]}))


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"app_id": APP_ID}, "botframework: 'app_password' is required"),
        ({**CREDENTIALS, "app_id": ""}, "botframework: 'app_id' must be a non-empty string"),
        ({**CREDENTIALS, "tenant": "x"}, "botframework: unknown key(s) tenant"),
    ],
)
def test_credentials_mistakes_name_the_key(params: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        BotFrameworkChannel.from_credentials(params)
    assert str(caught.value).startswith(error)
