"""Clients and expectations shared by the replay tests: the recording is the truth."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from marketstream.replay.recording_format import RecordedFrame, read_recording

WAIT_S = 60.0  # generous bound for every wait: a hang fails, slowness does not


def frames_of(path: Path) -> list[RecordedFrame]:
    return [f for f in read_recording(path) if not f.is_rest]


def recorded_streams(path: Path) -> list[str]:
    """The streams a Binance recording was subscribed to, from its URL."""
    query = urlsplit(frames_of(path)[0].url).query
    return query.removeprefix("streams=").split("/")


def stream_of(frame: str) -> str:
    stream: str = orjson.loads(frame)["stream"]
    return stream


def message_of(frame: str) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(frame)
    return message


async def wait_until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.01)


async def receive(ws: ClientConnection) -> str:
    message = await asyncio.wait_for(ws.recv(), WAIT_S)
    assert isinstance(message, str)
    return message


async def receive_n(ws: ClientConnection, count: int) -> list[str]:
    return [await receive(ws) for _ in range(count)]


async def receive_until_closed(ws: ClientConnection, into: list[str]) -> None:
    """Read every frame into `into` until the server closes the connection."""
    try:
        async with asyncio.timeout(WAIT_S):
            async for message in ws:
                assert isinstance(message, str)
                into.append(message)
    except ConnectionClosed:
        pass


async def http_get(url: str) -> tuple[int, str, bytes]:
    """GET in a thread: (status, content type, body), error statuses included."""

    def get() -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=WAIT_S) as response:  # noqa: S310
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read()

    return await asyncio.to_thread(get)


def subscribe_binance(streams: list[str], request_id: int = 1) -> str:
    """A Binance SUBSCRIBE request for the streams."""
    return orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": request_id}).decode()
