"""The root page of ``chatbot run``: the chat page for browsers, Rasa's greeting text otherwise.

``GET /`` with ``Accept: text/html`` answers ``web/index.html`` (with the socket.io channel's
settings filled in); anything else gets ``Hello from chatbot <version>`` as Rasa answers. The
page's stylesheet, script and the vendored socket.io client (``web/vendor/``) are served under
``/chat/``.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path

from aiohttp import web

from chatbot.agent import __version__

WEB_DIR = Path(__file__).resolve().parent / "web"
STATIC_PREFIX = "/chat/"
# Set by the socket.io channel when it is mounted: data-* attributes for the page.
CHAT_PAGE_CONFIG = web.AppKey("chat_page_config", dict)

# The page loads only its own files; images may come from anywhere on http(s).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: "
        "data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@functools.cache
def _template() -> str:
    return (WEB_DIR / "index.html").read_text(encoding="utf-8")


def render_page(config: dict[str, str] | None) -> str:
    """index.html with the channel's settings as data-* attributes on <body>."""
    attributes = {"enabled": "true" if config is not None else "false", **(config or {})}
    rendered = " ".join(
        f'data-{name}="{html.escape(value, quote=True)}"' for name, value in attributes.items()
    )
    return _template().replace("data-chat-config", rendered, 1)


def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def register_chat_page(app: web.Application) -> None:
    async def root(request: web.Request) -> web.Response:
        if not wants_html(request):
            return web.Response(
                text=f"Hello from chatbot {__version__}", headers={"Vary": "Accept"}
            )
        return web.Response(
            text=render_page(request.app.get(CHAT_PAGE_CONFIG)),
            content_type="text/html",
            headers={**PAGE_HEADERS, "Vary": "Accept"},
        )

    app.router.add_get("/", root)
    app.router.add_static(STATIC_PREFIX, WEB_DIR, show_index=False)
