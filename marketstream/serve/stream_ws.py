"""`/v1/stream`: live normalized records of chosen channels over a WebSocket.

Subscribe with `?channels=trades:<exchange>:BTC-USDT,quotes:*:*` (and `&last_ids=stream=id,...`
to resume), or, without `channels`, with a first message
`{"op": "subscribe", "channels": [...], "last_ids": {"md:{<exchange>}:trades": "<id>"}}`.
The server answers `{"type": "subscribed", ...}`, then `records` and `gap` messages (see
`live_reader`). A client too slow for its queue is closed with 1013 and the reason; limits and
bad channels close with 1008 naming them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from marketstream.errors import ServiceError
from marketstream.serve.channels import (
    Channel,
    ChannelError,
    parse_channels,
    parse_last_ids,
    parse_last_ids_param,
)
from marketstream.serve.context import ServeContext, context_of
from marketstream.serve.limits import client_id, close_reason
from marketstream.serve.live_reader import LiveHub, LiveSession, LiveSettings

log = logging.getLogger(__name__)
router = APIRouter(tags=["websocket"])

SUBSCRIBE_TIMEOUT_S: Final = 30.0  # a client that connects without channels must say them
CLOSE_TIMEOUT_S: Final = 30.0  # a client that reads nothing does not hold the close for ever
WS_TRY_AGAIN_LATER: Final = 1013
WS_INTERNAL_ERROR: Final = 1011


def hub_of(websocket: WebSocket) -> LiveHub:
    """The app's one `LiveHub` (its readers are shared by every connection), made on first use."""
    state = websocket.app.state
    hub: LiveHub | None = getattr(state, "live_hub", None)
    if hub is None:
        context: ServeContext = context_of(websocket)
        settings = context.settings
        hub = LiveHub(
            context.redis,
            LiveSettings(
                queue_max=settings.stream_queue,
                batch=settings.stream_batch,
                read_count=settings.stream_batch,
                catchup_page=settings.stream_batch,
            ),
        )
        state.live_hub = hub
        metrics = getattr(state, "metrics", None)
        if metrics is not None:
            metrics.registry.register(hub)
    return hub


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Live records of `channels`, resumed after `last_ids` (see the module docstring)."""
    context = context_of(websocket)
    async with context.slots.hold(client_id(websocket)):
        await websocket.accept()
        channels, last_ids = await _subscription(websocket)
        session = LiveSession(hub_of(websocket), channels, last_ids)
        try:
            try:
                positions = await session.open()
            except RedisError as exc:  # the app's handler closes 1011 with this one line
                raise ServiceError(f"Redis cannot be read for /v1/stream: {exc}") from None
            subscribed = {
                "type": "subscribed",
                "channels": [c.text for c in channels],
                "streams": positions,  # resume ids to keep until a record moves them on
            }
            await websocket.send_text(orjson.dumps(subscribed).decode())
        except BaseException:
            session.close()
            raise
        await _run(websocket, session)


async def _subscription(websocket: WebSocket) -> tuple[tuple[Channel, ...], dict[str, str]]:
    params = websocket.query_params
    if "channels" in params:
        return (
            parse_channels(params["channels"].split(",")),
            parse_last_ids_param(params.get("last_ids")),
        )
    try:
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            text = await websocket.receive_text()
    except TimeoutError:
        raise ChannelError(
            f"no subscribe message within {SUBSCRIBE_TIMEOUT_S:g} s: expected "
            '{"op": "subscribe", "channels": [...]} or ?channels='
        ) from None
    try:
        message: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, Mapping) or message.get("op") != "subscribe":
        raise ChannelError(
            f"first message {text[:80]!r} is not a subscribe message: expected "
            '{"op": "subscribe", "channels": ["trades:<exchange>:BTC-USDT"], "last_ids": {...}}'
        )
    channels = message.get("channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ChannelError(
            f"channels {channels!r} is not a list of strings: expected "
            '["trades:<exchange>:BTC-USDT", ...]'
        )
    return parse_channels(channels), parse_last_ids(message.get("last_ids"))


async def _run(websocket: WebSocket, session: LiveSession) -> None:
    """Send the session's messages until the client leaves, the client is too slow, or the
    server fails; each end closes with a code and reason (never silently)."""

    async def send() -> None:
        async with contextlib.aclosing(session.messages()) as messages:  # leaves the readers
            async for message in messages:
                await websocket.send_text(message)

    async def receive() -> None:
        while True:  # later messages are not commands; reading notices the client leaving
            await websocket.receive_text()

    sender = asyncio.create_task(send(), name="serve-stream-send")
    receiver = asyncio.create_task(receive(), name="serve-stream-receive")
    failure = asyncio.create_task(session.subscriber.failure.wait(), name="serve-stream-fail")
    tasks = {sender, receiver, failure}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if receiver in done and isinstance(receiver.exception(), WebSocketDisconnect | RuntimeError):
        return  # the client left
    if failure in done:
        reason = session.subscriber.failed or "closed by the server"
        log.info("closing a /v1/stream client: %s", reason)
        await _close(websocket, WS_TRY_AGAIN_LATER, reason)
        return
    if sender in done and sender.exception() is not None:
        exc = sender.exception()
        if isinstance(exc, WebSocketDisconnect):
            return
        if isinstance(exc, ChannelError):
            raise exc
        log.error("a /v1/stream session failed", exc_info=exc)
        await _close(websocket, WS_INTERNAL_ERROR, f"the stream failed: {exc}")
        return
    if receiver in done and receiver.exception() is not None:
        raise receiver.exception()  # type: ignore[misc]


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await websocket.close(code=code, reason=close_reason(reason))
