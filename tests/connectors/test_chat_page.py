"""The chat page at ``/``, in a real headless Chromium (Debian's), talking to the real server."""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chatbot.agent import Agent, __version__
from connectors.socketio import SocketIOChannel
from tests.connectors.servers import ServeChannel

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 10_000
IMAGE_URL = "https://picsum.photos/seed/terrace/400/300"  # utter_submit's image


def png(width: int, height: int) -> bytes:
    """A small gradient PNG, served in place of the bot's image (the test has no internet)."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (60 + x * 150 // width, 120, 200 - y // 3))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CHATBOT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} and CHATBOT_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(f"{reason}; set CHATBOT_REQUIRE_SERVICES=1 to fail instead")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_chat(browser: Any, url: str, **context: Any) -> Any:
    page = await (await browser.new_context(**context)).new_page()
    image = png(400, 300)
    await page.route(IMAGE_URL, lambda route: route.fulfill(body=image, content_type="image/png"))
    await page.goto(url)
    await page.wait_for_selector("#chat-status[data-state=online]", timeout=WAIT_MS)
    return page


async def bot_count(page: Any) -> int:
    return int(await page.locator(".message.bot").count())


async def say(page: Any, text: str) -> None:
    before = await bot_count(page)
    await page.fill("#message-input", text)
    await page.press("#message-input", "Enter")
    await wait_answered(page, before)


async def wait_answered(page: Any, before: int) -> None:
    await page.wait_for_function(
        "n => document.querySelectorAll('.message.bot').length > n"
        " && document.getElementById('typing').hidden",
        arg=before,
        timeout=WAIT_MS,
    )


async def reloaded(page: Any, messages: int) -> list[str]:
    """Reload the page and wait until it is online again with at least ``messages`` messages
    of its conversation shown; their texts."""
    await page.reload()
    await page.wait_for_selector("#chat-status[data-state=online]", timeout=WAIT_MS)
    await page.wait_for_function(
        "n => document.querySelectorAll('.message').length >= n", arg=messages, timeout=WAIT_MS
    )
    return list(await page.locator(".message").all_inner_texts())


async def scrolled_to_end(page: Any) -> None:
    await page.wait_for_function(
        "() => { const log = document.getElementById('messages');"
        " return log.scrollTop + log.clientHeight >= log.scrollHeight - 2; }",
        timeout=WAIT_MS,
    )


async def test_a_conversation_with_buttons_survives_a_reload(
    serve_channel: ServeChannel, browser: Any, tmp_path: Path
) -> None:
    async with serve_channel(SocketIOChannel()) as served:
        page = await open_chat(browser, served.url, viewport={"width": 390, "height": 844})
        await say(page, "/greet")
        await say(page, "/request_restaurant")
        before = await bot_count(page)
        await page.get_by_role("button", name="Italian").click()
        await wait_answered(page, before)
        await say(page, '/inform{"number": 2}')
        before = await bot_count(page)
        await page.get_by_role("button", name="Yes").click()
        await wait_answered(page, before)
        await say(page, "/deny")
        await page.wait_for_function(
            "() => [...document.querySelectorAll('.message.bot img')].some(i => i.naturalWidth)",
            timeout=WAIT_MS,
        )
        shown = await page.locator(".message").all_inner_texts()

        assert await reloaded(page, len(shown)) == shown
        users = await page.locator(".message.user .bubble").all_inner_texts()
        assert users[:3] == ["/greet", "/request_restaurant", "Italian"]
        assert "Yes" in users
        # Buttons answered earlier stay on the page but cannot be pressed again.
        italian = page.get_by_role("button", name="Italian")
        assert await italian.is_disabled()
        assert await italian.evaluate("b => b.classList.contains('chosen')")
        assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        await scrolled_to_end(page)
        await page.screenshot(path=str(tmp_path / "chat-phone.png"))

        key = await page.evaluate("localStorage.getItem('chatbot.session')")
        await page.get_by_role("button", name="Start a new conversation").click()
        await page.wait_for_selector("#empty-note", timeout=WAIT_MS)
        await page.wait_for_function(
            "key => localStorage.getItem('chatbot.session') !== key", arg=key, timeout=WAIT_MS
        )
        assert await page.locator(".message").count() == 0
        await page.context.close()


async def test_bot_and_user_text_cannot_inject_html(
    serve_channel: ServeChannel, agent: Agent, browser: Any, tmp_path: Path
) -> None:
    channel = SocketIOChannel()
    async with serve_channel(channel) as served:
        page = await open_chat(browser, served.url, viewport={"width": 1100, "height": 760})
        hostile = '<img src=x onerror="window.pwned=1"> **bold** <script>window.pwned=1</script>'
        await say(page, hostile)
        assert await page.locator(".message.user .bubble").first.inner_text() == hostile
        (conversation_id,) = await agent.store.conversation_ids()
        assert channel.sio is not None
        await channel.sio.emit(
            "bot_uttered",
            {
                "text": "**Bold** and *italic*, a [site](https://example.com), "
                "[bad](javascript:alert(1)), <b>tags</b>\nnext line https://example.org/x."
            },
            room=conversation_id,
        )
        bubble = page.locator(".message.bot .bubble").last
        await bubble.locator("strong").wait_for(timeout=WAIT_MS)
        assert await bubble.locator("strong").inner_text() == "Bold"
        assert await bubble.locator("em").inner_text() == "italic"
        links = await bubble.locator("a").evaluate_all("as => as.map(a => a.href)")
        assert links == ["https://example.com/", "https://example.org/x"]
        assert await bubble.locator("br").count() == 1
        assert "[bad](javascript:alert(1)), <b>tags</b>" in await bubble.inner_text()
        assert await page.locator(".messages img, .messages script, .messages b").count() == 0
        assert await page.evaluate("window.pwned") is None
        await scrolled_to_end(page)
        await page.screenshot(path=str(tmp_path / "chat-desktop.png"))
        await page.context.close()


async def test_the_page_is_labelled_for_assistive_technology(
    serve_channel: ServeChannel, browser: Any
) -> None:
    async with serve_channel(SocketIOChannel()) as served:
        page = await open_chat(browser, served.url)
        log = page.get_by_role("log", name="Conversation")
        assert await log.get_attribute("aria-live") == "polite"
        assert await page.get_by_label("Your message").is_visible()
        assert await page.get_by_role("button", name="Send").is_visible()
        await page.keyboard.press("Tab")  # the first stop is the new-conversation button
        focused = await page.evaluate("document.activeElement.getAttribute('aria-label')")
        assert focused == "Start a new conversation"
        await page.context.close()


async def test_root_answers_browsers_with_the_page_and_others_with_the_greeting(
    serve_channel: ServeChannel,
) -> None:
    async with serve_channel(SocketIOChannel()) as served, aiohttp.ClientSession() as http:
        async with http.get(f"{served.url}/") as response:
            assert await response.text() == f"Hello from chatbot {__version__}"
        async with http.get(f"{served.url}/", headers={"Accept": "text/html"}) as response:
            page = await response.text()
            assert response.content_type == "text/html"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert 'data-enabled="true"' in page and 'data-socketio-path="/socket.io"' in page
        for asset in ["chat.js", "chat.css", "vendor/socket.io.min.js"]:
            async with http.get(f"{served.url}/chat/{asset}") as response:
                assert response.status == 200, asset
        async with http.get(f"{served.url}/chat/../webchat.py") as response:
            assert response.status in (403, 404)


async def test_shutdown_closes_the_pages_connection_at_once(
    serve_channel: ServeChannel, browser: Any
) -> None:
    async with serve_channel(SocketIOChannel()) as served:
        page = await open_chat(browser, served.url)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0  # not the runner's shutdown_timeout (5 s)
    await page.wait_for_selector("#chat-status[data-state=offline]", timeout=WAIT_MS)
    await page.context.close()
