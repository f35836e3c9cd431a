"""`/metrics` (Prometheus text) and `/healthz` (JSON) for any MarketStream process, and the
`MetricSet` each process declares its metrics in.

A few lines on asyncio's own server: no thread, no web framework, same event loop as the
work it reports on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

Health = Callable[[], tuple[bool, dict[str, Any]]]


class MetricSet:
    """One process's metrics, each named `<prefix>_<name>`, in a registry of their own (so tests
    make fresh ones, and one process's /metrics never shows another's)."""

    def __init__(self, prefix: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._prefix = prefix

    def counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(f"{self._prefix}_{name}", doc, labels, registry=self.registry)

    def gauge(self, name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"{self._prefix}_{name}", doc, labels, registry=self.registry)

    def histogram(self, name: str, doc: str, *labels: str, buckets: Sequence[float]) -> Histogram:
        return Histogram(
            f"{self._prefix}_{name}", doc, labels, buckets=buckets, registry=self.registry
        )


async def serve_metrics(
    registry: CollectorRegistry, health: Health, host: str, port: int
) -> asyncio.Server:
    """Start serving; `port` 0 picks a free one (read it from the returned server's sockets)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, path = ([*request.split(b" ", 2), b"", b""])[:2]
            status, content_type, body = _respond(method, path.split(b"?")[0], registry, health)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)


def _respond(
    method: bytes, path: bytes, registry: CollectorRegistry, health: Health
) -> tuple[str, str, bytes]:
    if method != b"GET":
        return "405 Method Not Allowed", "text/plain", b"GET only\n"
    if path == b"/metrics":
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest(registry)
    if path == b"/healthz":
        ok, detail = health()
        body = orjson.dumps({"status": "ok" if ok else "unhealthy", **detail})
        return ("200 OK" if ok else "503 Service Unavailable"), "application/json", body
    return "404 Not Found", "text/plain", b"try /metrics or /healthz\n"


def bound_port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port
