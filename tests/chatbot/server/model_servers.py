"""A model server for the tests (``ModelServer``: Rasa's protocol, on 127.0.0.1), two real
models that greet differently, and a bot started as ``chatbot run`` starts it; shared by
test_model_pull.py (endpoints.yml's ``models:``) and test_put_model_server.py (``PUT /model``'s
``model_server``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chatbot import model_file
from chatbot.agent import TrainedModel
from chatbot.server.app import build_agent, resolve_settings
from chatbot.server.model_pull import MODEL_PULLS, ModelPuller
from chatbot.server.settings import ServerSettings
from tests.chatbot.server.support import StartServer, say
from tests.helpers import RULES_ONLY, train_files

TOKEN = "s3cret-model-token"
WAIT = 30.0  # seconds a test waits for pulls on a busy machine

DOMAIN = """\
version: "3.1"
intents: [greet]
responses:
  utter_greet:
  - text: "{greeting}"
"""
RULES = """\
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Two model files, by name: "v1" greets "Hello from v1!", "v2" "Hello from v2!"."""
    files: dict[str, bytes] = {}
    for name in ("v1", "v2"):
        root = tmp_path_factory.mktemp(name)
        domain = DOMAIN.format(greeting=f"Hello from {name}!")
        model = train_files(
            root, {"domain.yml": domain, "data/rules.yml": RULES, "config.yml": RULES_ONLY}
        )
        model.to_file(root / "bot.model")
        files[name] = (root / "bot.model").read_bytes()
    return files


class ModelServer:
    """Serves one model file at /models/default with its ETag, 304 when If-None-Match names it;
    401 without the token; ``fault`` makes it answer 500, 404, a garbage file, or hang."""

    def __init__(self, port: int | None = None) -> None:
        self.body = b""
        self.etag = ""
        self.fault: str | None = None
        self.requests = 0
        self.not_modified = 0
        self.tokens: list[str | None] = []
        self.if_none_match: list[str | None] = []
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/models/default", self.model)
        self.server = TestServer(app, host="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/models/default"))

    def serve(self, name: str, body: bytes) -> None:
        self.body, self.etag, self.fault = body, f'"{name}"', None

    async def model(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.tokens.append(request.query.get("token"))
        self.if_none_match.append(request.headers.get("If-None-Match"))
        if request.query.get("token") != TOKEN:
            return web.Response(status=401, text="bad token")
        if self.fault == "500":
            return web.Response(status=500, text="model store is broken")
        if self.fault == "404":
            return web.Response(status=404)
        if self.fault == "garbage":
            return web.Response(body=b"<html>not a model</html>", headers={"ETag": '"junk"'})
        if self.fault == "inconsistent":  # a valid checksum over a domain that is not one
            meta, tensors = model_file.loads(self.body)
            meta["domain"]["responses"]["utter_greet"] = [7]
            return web.Response(body=model_file.dumps(meta, tensors), headers={"ETag": '"odd"'})
        if self.fault == "hang":
            await self.release.wait()
        if self.etag and request.headers.get("If-None-Match") == self.etag:
            self.not_modified += 1
            return web.Response(status=304)
        if not self.body:
            return web.Response(status=404)
        headers = {"ETag": self.etag} if self.etag else {}
        return web.Response(
            body=self.body, headers=headers, content_type="application/octet-stream"
        )


@pytest.fixture
async def model_server() -> AsyncIterator[Callable[..., Awaitable[ModelServer]]]:
    """``await model_server(port=None)``: a started model server on 127.0.0.1."""
    started: list[ModelServer] = []

    async def start(port: int | None = None) -> ModelServer:
        server = ModelServer(port)
        await server.server.start_server()
        started.append(server)
        return server

    yield start
    for server in started:
        server.release.set()
        await server.server.close()


class Bot:
    """A bot started as ``chatbot run`` starts it, from a project folder, with the API on."""

    def __init__(self, client: TestClient, loads: list[TrainedModel]) -> None:
        self.client = client
        self.loads = loads  # every model swapped in, in order

    @property
    def puller(self) -> ModelPuller:
        app = self.client.app
        assert app is not None
        puller = app[MODEL_PULLS].puller
        assert puller is not None, "no model server is followed"
        return puller

    async def greeting(self, sender: str = "ann") -> str:
        messages = await say(self.client, sender, "/greet")
        return str(messages[0]["text"])

    async def pull_counts(self) -> dict[str, float]:
        """``chatbot_model_pulls_total`` of ``/metrics``, by outcome."""
        text = await (await self.client.get("/metrics")).text()
        found = re.findall(r'^chatbot_model_pulls_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
        return {outcome: float(value) for outcome, value in found}

    async def pulls(self, more: int) -> None:
        """Until ``more`` more pulls have finished: at least ``more - 1`` of them began after
        this call."""
        await asyncio.wait_for(self.puller.wait_for_pulls(self.puller.pulls + more), WAIT)


@pytest.fixture
def start_bot(
    start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Awaitable[Bot]]:
    async def start(models_block: str | None, local: bytes | None = None) -> Bot:
        """``models_block`` None: endpoints.yml has no ``models:``."""
        models = "" if models_block is None else "models:\n" + models_block
        (tmp_path / "endpoints.yml").write_text("tracker_store:\n  type: in_memory\n" + models)
        if local is not None:
            (tmp_path / "models").mkdir(exist_ok=True)
            (tmp_path / "models" / "local.model").write_bytes(local)
        settings = ServerSettings(project_dir=tmp_path, enable_api=True, rate_limit=None)
        settings = resolve_settings(settings)
        agent = build_agent(settings)
        loads: list[TrainedModel] = []
        replace = agent.replace_model

        def counted(model: TrainedModel) -> None:
            loads.append(model)
            replace(model)

        monkeypatch.setattr(agent, "replace_model", counted)
        return Bot(await start_server(agent, settings), loads)

    return start


def block(url: str, *, wait: str = "0.2", token: str = TOKEN, extra: str = "") -> str:
    return f"  url: {url}\n  token: {token}\n  wait_time_between_pulls: {wait}\n{extra}"
