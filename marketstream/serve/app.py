"""The ASGI app: routers, auth, CORS, metrics and the error shapes, on one `ServeContext`.

`ROUTERS` is the one place a router is added to the API; `create_app` includes them in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler
from starlette.websockets import WebSocket, WebSocketState

from marketstream import __version__
from marketstream.errors import ServiceError
from marketstream.query.hot_queries import QueryInputError
from marketstream.serve import health, replay_ws, rest, stream_ws
from marketstream.serve.context import ServeContext
from marketstream.serve.limits import Refused, close_reason
from marketstream.serve.middleware import AuthMiddleware, MetricsMiddleware, ServeMetrics

# Every router of the API, in the order they are included (WebSocket routers last).
ROUTERS: list[APIRouter] = [health.router, rest.router, stream_ws.router, replay_ws.router]


def create_app(context: ServeContext) -> FastAPI:
    """The API on `context` (kept at `app.state.context`); the context is closed at shutdown."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(
        title="MarketStream API",
        version=__version__,
        description="Latest prices, every record type over every tier, live streams and replay.",
        lifespan=lifespan,
    )
    app.state.context = context
    metrics = ServeMetrics()
    app.state.metrics = metrics
    for router in ROUTERS:
        app.include_router(router)
    # One handler per error for HTTP and WebSocket alike (Starlette passes either).
    for error, handler in (
        (Refused, _refused),
        (QueryInputError, _bad_input),
        (ServiceError, _unavailable),
    ):
        app.add_exception_handler(error, cast("ExceptionHandler", handler))
    # Added innermost first: metrics see every answer, CORS answers preflights before auth.
    app.add_middleware(AuthMiddleware, token=context.token, token_env=context.settings.token_env)
    if context.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(context.settings.cors_origins),
            allow_methods=["GET"],
            allow_headers=["Authorization", "Accept"],
            expose_headers=["X-Next-Cursor"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


async def _refused(connection: HTTPConnection, exc: Exception) -> Response | None:
    assert isinstance(exc, Refused)
    return await _error(connection, exc.message, exc.status, exc.ws_code)


async def _bad_input(connection: HTTPConnection, exc: Exception) -> Response | None:
    return await _error(connection, str(exc), 400, 1008)


async def _unavailable(connection: HTTPConnection, exc: Exception) -> Response | None:
    return await _error(connection, str(exc), 503, 1011)


async def _error(
    connection: HTTPConnection, message: str, status: int, ws_code: int
) -> Response | None:
    """`{"detail": message}` with `status`, or a WebSocket closed with `ws_code` and the
    message as its reason (accepted first, so that browsers see the code and reason)."""
    if isinstance(connection, WebSocket):
        if connection.client_state == WebSocketState.CONNECTING:
            await connection.accept()
        if connection.client_state == WebSocketState.CONNECTED:
            await connection.close(code=ws_code, reason=close_reason(message))
        return None
    return JSONResponse({"detail": message}, status_code=status)
