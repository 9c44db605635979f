"""Prometheus metrics at ``/metrics``: messages, their latency, HTTP requests, errors.

Each application has a registry of its own (two servers in one process, as in tests, do not share
counters). Routes are labelled by their pattern, never by a raw path or a conversation id. Under
``chatbot run --workers`` each worker adds the other workers' latest figures to its own
(``merge_expositions``), so a scrape that reaches any of them counts all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from chatbot.server.errors import route_name

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# Labels come from a bounded set, never straight from a request: a client that makes up an
# ``input_channel`` or an HTTP method per request would otherwise grow the registry without end.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


class Metrics:
    def __init__(self) -> None:
        # The channels a message is labelled with: the mounted ones, the HTTP API's, and
        # "unknown" (a message without one); any other name a client sends is "other".
        self.channels: set[str] = {"api", "unknown"}
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "chatbot_messages",
            "User messages handled, by channel and outcome (ok, error).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.message_seconds = Histogram(
            "chatbot_message_seconds",
            "Seconds from receiving a user message to having the bot's answer stored.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "chatbot_errors",
            "Errors answered to clients or users, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "chatbot_rate_limited",
            "Messages refused by the per-sender rate limit.",
            registry=self.registry,
        )
        self.overloaded = Counter(
            "chatbot_overloaded",
            "Messages refused because the server had --max-in-flight messages in progress.",
            registry=self.registry,
        )
        self.http_requests = Counter(
            "chatbot_http_requests",
            "HTTP requests, by method, route pattern and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "chatbot_http_request_seconds",
            "Seconds to answer an HTTP request, by route pattern.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_pulls = Counter(
            "chatbot_model_pulls",
            "Requests to the model server (endpoints.yml models:), by outcome: new_model, "
            "unchanged, failed.",
            ["outcome"],
            registry=self.registry,
        )
        # Under ``chatbot run --workers``: the other workers' latest expositions
        # (``chatbot.server.worker_sync``), added to this one's at a scrape.
        self.others: Callable[[], list[str]] | None = None

    def watch_action_server(self, executor_getter: Callable[[], Any]) -> None:
        """Export the custom-action executor's failure count and circuit state."""
        self.registry.register(_ActionServerCollector(executor_getter))

    def watch_in_flight(self, count: Callable[[], int]) -> None:
        """Export the messages in progress, read when the metrics are scraped."""
        self.registry.register(_InFlightCollector(count))

    def own(self) -> bytes:
        """This process's figures alone."""
        return generate_latest(self.registry)

    def render(self) -> bytes:
        if self.others is None:
            return self.own()
        return merge_expositions([self.own().decode(), *self.others()])

    def add_channels(self, *names: str) -> None:
        self.channels.update(names)

    def channel_label(self, channel: str) -> str:
        return channel if channel in self.channels else OTHER

    def observe_request(self, request: web.Request, status: int, seconds: float) -> None:
        route = route_name(request)
        method = request.method if request.method in METHODS else OTHER
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def middleware(self) -> Middleware:
        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                self.observe_request(request, status, time.perf_counter() - started)

        return metrics_middleware

    async def handle(self, request: web.Request) -> web.Response:
        # ``CONTENT_TYPE_LATEST`` carries its charset; aiohttp wants them apart.
        content_type, _, params = CONTENT_TYPE_LATEST.partition(";")
        charset = params.partition("charset=")[2] or "utf-8"
        return web.Response(body=self.render(), content_type=content_type, charset=charset)


# Gauges whose workers' values are not added up: whether any worker's circuit is open is meant.
_MAX_GAUGES = frozenset({"chatbot_action_server_circuit_open"})


def merge_expositions(texts: Iterable[str]) -> bytes:
    """Several processes' expositions as one: counters, histograms and gauges (messages in
    flight) added up, ``_created`` the earliest, the circuit breakers' state the highest. A text
    that does not parse is left out with a warning."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        try:
            parsed = list(text_string_to_metric_families(text))
        except (ValueError, TypeError) as exc:
            logger.warning("a worker's metrics do not parse (%s); left out", exc)
            continue
        for family in parsed:
            known = families.setdefault(family.name, family)
            if known.type != family.type:
                continue
            into = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = into.get(key)
                if old is None:
                    into[key] = sample.value
                elif sample.name.endswith("_created"):
                    into[key] = min(old, sample.value)
                elif family.type == "gauge" and family.name in _MAX_GAUGES:
                    into[key] = max(old, sample.value)
                else:
                    into[key] = old + sample.value
    merged = []
    for name, family in families.items():
        metric = Metric(name, family.documentation, family.type)
        for (sample_name, labels), value in values.get(name, {}).items():
            metric.add_sample(sample_name, dict(labels), value)
        merged.append(metric)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(merged))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


class _InFlightCollector(Collector):
    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterator[Any]:
        gauge = GaugeMetricFamily("chatbot_messages_in_flight", "Messages (turns) in progress.")
        gauge.add_metric([], float(self.count()))
        yield gauge


class _ActionServerCollector(Collector):
    def __init__(self, executor_getter: Callable[[], Any]) -> None:
        self.executor_getter = executor_getter

    def collect(self) -> Iterator[Any]:
        breaker = getattr(self.executor_getter(), "breaker", None)
        if breaker is None:
            return
        failures = CounterMetricFamily(
            "chatbot_action_server_failures",
            "Calls to the action server that failed (timeout, refused, 5xx, bad answer).",
        )
        failures.add_metric([], breaker.total_failures)
        yield failures
        circuit = GaugeMetricFamily(
            "chatbot_action_server_circuit_open",
            "1 while the circuit breaker keeps calls away from a failing action server.",
        )
        circuit.add_metric([], 1.0 if breaker.is_open() else 0.0)
        yield circuit
