"""Which client a request comes from, for the per-client rate limit (``--client-rate-limit``).

The per-sender limit counts messages per conversation id, which the client chooses: one that
sends each message under a new sender id is bounded by it not at all. The per-client limit counts
them per network address instead. That address is the connection's peer, except where the peer
is a proxy the operator names (``--forwarded-allow-ips``, as uvicorn's and gunicorn's option):
then it is the right-most address of ``X-Forwarded-For`` that is not such a proxy. Addresses left
of it are what the client itself claims, so they are never believed; and the header of a peer
that is not named is not read at all (any client can send one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from chatbot.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ANY = "*"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``text`` names ("[::1]" and "1.2.3.4:5678" too), or None."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6] or [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` names the client: addresses or networks
    (``10.0.0.0/8``), or ``*`` for any peer (a server only a proxy can reach)."""

    def __init__(self, specs: Iterable[str] = ()) -> None:
        self.any = False
        self.networks: list[IPNetwork] = []
        self.specs: tuple[str, ...] = ()  # each address or network as written, checked
        for spec in specs:
            for part in spec.split(","):
                part = part.strip()
                if not part:
                    continue
                self.specs += (part,)
                if part == ANY:
                    self.any = True
                    continue
                try:
                    self.networks.append(ipaddress.ip_network(part, strict=False))
                except ValueError:
                    raise ConfigError(
                        f"--forwarded-allow-ips: {part!r} is not an IP address or network "
                        "(write e.g. 127.0.0.1, 10.0.0.0/8, ::1, or * for any)"
                    ) from None

    def __bool__(self) -> bool:
        return self.any or bool(self.networks)

    def trusts(self, host: str) -> bool:
        if self.any:
            return True
        address = _address(host)
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: ``peer``, or where a trusted proxy is the peer, the right-most
        hop of ``forwarded_for`` that is not trusted (the left-most where all are)."""
        if not peer or not forwarded_for or not self.trusts(peer):
            return peer or None
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


def request_client(request: web.BaseRequest, proxies: TrustedProxies) -> str | None:
    """The address of the client that sent ``request`` (None on a socket without one)."""
    return proxies.client(request.remote, request.headers.get("X-Forwarded-For"))


def environ_client(environ: dict[str, Any], proxies: TrustedProxies) -> str | None:
    """The same for a socket.io connection, from the WSGI-like environ python-socketio gives."""
    request = environ.get("aiohttp.request")
    if isinstance(request, web.BaseRequest):
        return request_client(request, proxies)
    peer = environ.get("REMOTE_ADDR")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    return proxies.client(
        peer if isinstance(peer, str) else None, forwarded if isinstance(forwarded, str) else None
    )
