"""DucklingEntityExtractor: entities from a Duckling server (a stand-in on 127.0.0.1 that speaks
its API), as Rasa makes them; a Duckling that fails costs one warning, not the message."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from chatbot.agent import Agent, TrainedModel
from chatbot.conversation.conversation import Conversation
from chatbot.errors import ConfigError, ModelFileError
from chatbot.nlu import NLUModel
from chatbot.nlu.duckling import DucklingClient, DucklingConfig, duckling_from_pipeline
from chatbot.project.config import ComponentConfig
from tests.chatbot.nlu.fake_duckling import FakeDuckling
from tests.helpers import RULES_ONLY, domain_of, free_port, refusing_port, train_files

# 2026-12-06 10:00 UTC, 11:00 in Berlin.
REFTIME = int(datetime(2026, 12, 6, 10, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture
async def duckling() -> AsyncIterator[FakeDuckling]:
    fake = FakeDuckling()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def client() -> AsyncIterator[DucklingClient]:
    made = DucklingClient(retry_seconds=0.3)
    yield made
    await made.close()


async def test_entities_as_rasa_makes_them(duckling: FakeDuckling, client: DucklingClient) -> None:
    config = DucklingConfig(url=duckling.url, locale="en_GB", timezone="Europe/Berlin")
    text = "a table for 3 tomorrow"

    entities = await client.entities(config, text, REFTIME)

    assert duckling.requests == [
        {"text": text, "locale": "en_GB", "tz": "Europe/Berlin", "reftime": str(REFTIME)}
    ]
    number, day = entities
    assert number == {
        "entity": "number",
        "start": 12,
        "end": 13,
        "text": "3",
        "value": 3,
        "confidence": 1.0,
        "additional_info": {"value": 3, "type": "value"},
        "extractor": "DucklingEntityExtractor",
    }
    assert (day["entity"], text[day["start"] : day["end"]]) == ("time", "tomorrow")
    assert day["value"] == "2026-12-07T00:00:00.000+01:00"  # Berlin's midnight
    assert day["additional_info"]["grain"] == "day"


async def test_an_interval_is_from_and_to(duckling: FakeDuckling, client: DucklingClient) -> None:
    config = DucklingConfig(url=duckling.url, timezone="Europe/Berlin")
    (weekend,) = await client.entities(config, "free this weekend?", REFTIME)
    assert weekend["value"] == {
        "from": "2026-12-11T18:00:00.000+01:00",
        "to": "2026-12-14T00:00:00.000+01:00",
    }
    assert weekend["additional_info"]["type"] == "interval"


async def test_dimensions_are_asked_for_and_kept_to(
    duckling: FakeDuckling, client: DucklingClient
) -> None:
    config = DucklingConfig(url=duckling.url, dimensions=("time",))
    entities = await client.entities(config, "two people tomorrow", REFTIME)
    assert [e["entity"] for e in entities] == ["time"]
    assert json.loads(duckling.requests[0]["dims"]) == ["time"]
    # A server that answers more than it was asked: only the dimensions asked for are kept.
    duckling.fault = json.dumps(
        [{"start": 0, "end": 3, "dim": "number", "body": "two", "value": {"value": 2}}]
    )
    assert await client.entities(config, "two people", REFTIME) == []


async def test_rasas_environment_variable_names_the_server(
    duckling: FakeDuckling, client: DucklingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RASA_DUCKLING_HTTP_URL", duckling.url)
    config = DucklingConfig(url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert [e["value"] for e in await client.entities(config, "for 4", REFTIME)] == [4]


async def test_without_a_url_one_warning_and_no_entities(
    client: DucklingClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RASA_DUCKLING_HTTP_URL", raising=False)
    with caplog.at_level(logging.WARNING, logger="chatbot.nlu.duckling"):
        assert await client.entities(DucklingConfig(), "for 4") == []
        assert await client.entities(DucklingConfig(), "for 5") == []
    assert len(caplog.records) == 1 and "no url" in caplog.records[0].getMessage()


async def test_a_failing_server_is_left_alone_for_a_while(
    duckling: FakeDuckling, client: DucklingClient, caplog: pytest.LogCaptureFixture
) -> None:
    config = DucklingConfig(url=duckling.url)
    duckling.fault = "error"
    with caplog.at_level(logging.WARNING, logger="chatbot.nlu.duckling"):
        assert await client.entities(config, "for 4", REFTIME) == []
        for _ in range(5):  # within the pause: not asked, no more lines
            assert await client.entities(config, "for 4", REFTIME) == []
    assert len(duckling.requests) == 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert "status 500" in line and duckling.url in line
    time.sleep(0.35)
    duckling.fault = None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="chatbot.nlu.duckling"):
        assert [e["value"] for e in await client.entities(config, "for 4", REFTIME)] == [4]
    (back,) = [r.getMessage() for r in caplog.records]
    assert "answers again (5 messages were parsed without it)" in back
    duckling.fault = "error"
    time.sleep(0.35)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="chatbot.nlu.duckling"):
        assert await client.entities(config, "for 4", REFTIME) == []
    assert len(duckling.requests) == 3


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("refused", "Cannot connect"),
        ("slow", "no answer in 0.2 s"),
        ("not json", "Expecting value"),
        ('{"value": 3}', "not a list of matches"),
        ("[" + '"x",' * 400_000 + '"x"]', "larger than 1048576 bytes"),
    ],
    ids=["refused", "slow", "not-json", "not-a-list", "too-large"],
)
async def test_failures_give_no_entities_and_one_line(
    duckling: FakeDuckling,
    client: DucklingClient,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    said: str,
) -> None:
    duckling.fault, duckling.delay = fault, 5.0
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}" if fault == "refused" else duckling.url
        # A refusal comes at once; its timeout is long enough that a loaded machine's stall of
        # the event loop cannot turn it into "no answer" (seen in CI with 0.2 s).
        config = DucklingConfig(url=url, timeout=1.5 if fault == "refused" else 0.2)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="chatbot.nlu.duckling"):
            assert await client.entities(config, "for 4", REFTIME) == []
    assert time.monotonic() - started < 2.0
    (line,) = [r.getMessage() for r in caplog.records]
    assert said in line, line


async def test_malformed_matches_are_skipped(
    duckling: FakeDuckling, client: DucklingClient, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"start": 4, "end": 5, "dim": "number", "body": "4", "value": {"value": 4}}
    duckling.fault = json.dumps(
        [
            good,
            {"start": 4, "end": 99, "dim": "number", "value": {"value": 4}},  # past the end
            {"start": "4", "end": 5, "dim": "number", "value": {"value": 4}},
            {"start": 4, "end": 5, "dim": "number", "value": 4},
            {"start": 4, "end": 5, "value": {"value": 4}},
            "number",
        ]
    )
    with caplog.at_level(logging.WARNING, logger="chatbot.nlu.duckling"):
        entities = await client.entities(DucklingConfig(url=duckling.url), "for 4", REFTIME)
    assert [(e["entity"], e["value"]) for e in entities] == [("number", 4)]
    assert "5 malformed matches skipped" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"url": "localhost:8000"}, "url must be an http(s) URL"),
        ({"url": 8000}, "url must be an http(s) URL"),
        ({"url": "http://[::1:8000"}, "url must be an http(s) URL"),  # was a ValueError
        ({"url": "http://localhost:80000"}, "url must be an http(s) URL"),
        ({"dimensions": "time, number,"}, None),
        ({"dimensions": [1]}, "dimensions must be a list of names"),
        ({"dimensions": {"time": 1}}, "dimensions must be a list of names"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "3"}, "timeout must be a positive number"),
        ({"timeout": 10**400}, "timeout must be a positive number"),  # was an OverflowError
        ({"locale": ""}, "locale must be a name"),
        ({"timezone": 1}, "timezone must be a name"),
        ({"url": "http://x:8000", "host": "x"}, "unknown setting 'host'"),
    ],
)
def test_settings_are_checked_with_their_place(params: dict[str, Any], said: str | None) -> None:
    component = ComponentConfig("DucklingEntityExtractor", params)
    if said is None:  # one string: one dimension, as written
        (config,) = [duckling_from_pipeline([component])]
        assert config is not None and config.dimensions == ("time, number,",)
        return
    with pytest.raises(ConfigError, match="DucklingEntityExtractor") as raised:
        duckling_from_pipeline([component])
    assert said in str(raised.value)


async def test_a_trained_bot_fills_a_slot_from_duckling(
    duckling: FakeDuckling, tmp_path: Path
) -> None:
    model = train_files(
        tmp_path,
        {
            "domain.yml": (
                "intents: [book, greet]\nentities: [number]\n"
                "slots:\n  people:\n    type: float\n    mappings:\n"
                "      - type: from_entity\n        entity: number\n"
                "responses:\n  utter_ok:\n    - text: Booked for {people}.\n"
            ),
            "data/nlu.yml": (
                "nlu:\n- intent: book\n  examples: |\n    - book a table\n"
                "    - a table please\n    - I want a table for some people\n"
                "- intent: greet\n  examples: |\n    - hello\n    - hi there\n"
            ),
            "data/rules.yml": (
                "rules:\n- rule: book\n  steps:\n  - intent: book\n  - action: utter_ok\n"
            ),
            "config.yml": RULES_ONLY
            + "pipeline:\n  - name: WhitespaceTokenizer\n  - name: DIETClassifier\n"
            "    epochs: 20\n"
            f"  - name: DucklingEntityExtractor\n    url: {duckling.url}\n"
            "    dimensions: [number]\n    locale: en_GB\n",
        },
    )
    assert model.duckling == DucklingConfig(
        url=duckling.url, dimensions=("number",), locale="en_GB"
    )
    # The model file keeps the settings.
    model.to_file(tmp_path / "bot.model")
    loaded = TrainedModel.from_file(tmp_path / "bot.model")
    assert loaded.duckling == model.duckling
    agent = Agent(loaded)
    try:
        answer = await agent.handle_text("book a table for four", "ann")
        assert answer == [{"recipient_id": "ann", "text": "Booked for 4."}]
        stored = await agent.store.load("ann")
        assert Conversation("ann", loaded.domain, stored.events).slots["people"] == 4
        assert (await agent.parse("/book"))["entities"] == []  # payloads are not sent
        assert [r["text"] for r in duckling.requests] == ["book a table for four"]
    finally:
        await agent.close()


async def test_duckling_entities_follow_the_nlu_models(
    duckling: FakeDuckling, toy_model: NLUModel
) -> None:
    model = TrainedModel(
        domain_of("intents: [greet]"), [], toy_model, duckling=DucklingConfig(url=duckling.url)
    )
    agent = Agent(model)
    try:
        parsed = await agent.parse("hello, a table for 2 please")
    finally:
        await agent.close()
    assert parsed["intent"]["name"] is not None
    assert parsed["entities"][-1]["extractor"] == "DucklingEntityExtractor"
    assert parsed["entities"][-1]["value"] == 2
    # Without the agent's client (a model used alone) nothing is asked.
    assert all(
        e.get("extractor") != "DucklingEntityExtractor"
        for e in (await model.parse("a table for 2"))["entities"]
    )


@pytest.mark.parametrize(
    "stored",
    [{"url": "ftp://x"}, [1], {"timeout": -1}],
)
def test_a_model_file_with_bad_duckling_settings_is_refused(tmp_path: Path, stored: object) -> None:
    from chatbot import model_file

    model = TrainedModel(domain_of("intents: [greet]"), [])
    model.to_file(tmp_path / "bot.model")
    meta, tensors = model_file.load(tmp_path / "bot.model")
    meta["duckling"] = stored
    model_file.save(tmp_path / "bot.model", meta, tensors)
    with pytest.raises(ModelFileError, match="duckling"):
        TrainedModel.from_file(tmp_path / "bot.model")


async def test_requests_in_flight_when_it_fails_give_one_line(
    duckling: FakeDuckling, client: DucklingClient, caplog: pytest.LogCaptureFixture
) -> None:
    duckling.fault, duckling.delay = "slow", 5.0
    # 1 s, not less: on a loaded machine all five must have reached Duckling before the first
    # times out (a request that starts after that is not sent: Duckling is left alone then).
    config = DucklingConfig(url=duckling.url, timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="chatbot.nlu.duckling"):
        found = await asyncio.gather(*(client.entities(config, "for 4", REFTIME) for _ in range(5)))
    assert found == [[]] * 5 and len(duckling.requests) == 5
    assert len(caplog.records) == 1 and "no answer in 1 s" in caplog.records[0].getMessage()
