"""ASGI middleware of the API: bearer-token auth and request metrics.

Plain ASGI (not `BaseHTTPMiddleware`) so that streamed responses and WebSockets pass through
untouched and a refused WebSocket gets a real close code.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketstream.serve.auth import authorized, presented_token
from marketstream.serve.limits import AUTHENTICATED_TOKEN, WS_POLICY_VIOLATION, close_reason

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class ServeMetrics:
    """The API's metrics, in a registry of its own (served at /metrics)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "marketstream_serve_requests",
            "HTTP requests and WebSocket sessions, by route, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "marketstream_serve_request_seconds",
            "time to the end of the response (of the session for a WebSocket), by route",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        status = "ws" if scope["type"] == "websocket" else "500"
        started = time.perf_counter()

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            elif message["type"] == "websocket.close":
                status = f"ws{message.get('code', 1000)}"
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        finally:
            route = scope.get("route")
            # the route's template, never the raw path: bounded label values
            name = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "WS")
            self.metrics.requests.labels(name, method, status).inc()
            self.metrics.latency.labels(name, method).observe(time.perf_counter() - started)


class AuthMiddleware:
    """401 (WebSocket: close 1008) without the right bearer token, when one is configured."""

    def __init__(self, app: ASGIApp, token: str | None, token_env: str) -> None:
        self.app, self.token, self.token_env = app, token, token_env

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if authorized(connection, self.token):
            if self.token is not None:
                scope[AUTHENTICATED_TOKEN] = self.token
            await self.app(scope, receive, send)
            return
        given = presented_token(connection) is not None
        message = (
            "wrong bearer token" if given else "missing bearer token: send Authorization: Bearer"
        ) + f" <the server's ${self.token_env}>"
        if scope["type"] == "http":
            response = JSONResponse(
                {"detail": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send(
            {
                "type": "websocket.close",
                "code": WS_POLICY_VIOLATION,
                "reason": close_reason(message),
            }
        )
