"""The replay pump sends a frame without awaiting only when nothing can come before it."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from websockets.asyncio.client import connect
from websockets.protocol import State

from marketstream.replay.dialect import Route
from marketstream.replay.server import ReplayServer, _Connection, _text_header
from marketstream.replay.source import Pacer, ReplayFrame
from marketstream.venues.binance.replay import BinanceSession
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import (
    frames_of,
    message_of,
    receive,
    receive_n,
    recorded_streams,
    subscribe_binance,
    wait_until,
)

FRAME = ReplayFrame(1, '{"stream":"a@trade","data":{}}', Route("a@trade"))


@dataclass
class _Transport:
    buffered: int = 0
    high_water: int = 65536

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.high_water // 4, self.high_water


@dataclass
class _Protocol:
    state: State = State.OPEN


@dataclass
class _Ws:
    transport: _Transport = field(default_factory=_Transport)
    protocol: _Protocol = field(default_factory=_Protocol)


def _connection(ws: _Ws) -> _Connection:
    return _Connection(cast(Any, ws), BinanceSession("/stream?streams=a@trade"))


async def test_a_frame_never_overtakes_an_answer_being_sent(usdm: Path) -> None:
    """A subscription's answer holds the connection's lock while it is sent: the frame must
    wait for it (the pump's awaiting path), not join the burst ahead of the answer."""
    server = ReplayServer(usdm, DIALECTS, max_speed=True)  # not started: no pump runs
    conn = _connection(_Ws())
    async with conn.lock:
        assert server._send_at_once([conn], FRAME) == 0
        assert conn.pending == []
        assert conn.sent == server.messages == 0
    assert server._send_at_once([conn], FRAME) == 1
    payload = FRAME.text.encode()
    assert conn.pending == [_text_header(len(payload)), payload]
    assert conn.sent == server.messages == 1


async def test_a_full_socket_buffer_stops_the_burst_at_that_connection(usdm: Path) -> None:
    """Targets are served in order: the first whose buffer is full, and every one after it,
    take the frame through the awaiting path; those before it have it in their burst."""
    server = ReplayServer(usdm, DIALECTS, max_speed=True)
    first, full, last = _connection(_Ws()), _connection(_Ws()), _connection(_Ws())
    full.ws.transport.buffered = 65536  # type: ignore[attr-defined]  # the fake's
    assert server._send_at_once([first, full, last], FRAME) == 1
    assert len(first.pending) == 2
    assert full.pending == last.pending == []
    closed = _connection(_Ws(protocol=_Protocol(State.CLOSING)))
    assert server._send_at_once([closed], FRAME) == 0


async def test_a_client_that_reads_late_gets_every_frame_once_in_order(usdm: Path) -> None:
    """A client that does not read fills the socket buffers (small ones, on both sides:
    loopback's would hold the whole recording): the pump then waits on `ws.send` for each
    frame that does not fit, and nothing is lost, doubled or reordered."""
    expected = [f.frame for f in frames_of(usdm)]
    async with ReplayServer(usdm, DIALECTS, max_speed=True) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        sock.connect(("127.0.0.1", server.port))
        async with connect(server.ws_url, sock=sock, max_queue=4) as ws:
            await wait_until(lambda: len(server._connections) == 1)
            (conn,) = server._connections
            served = conn.ws.transport.get_extra_info("socket")
            served.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            await ws.send(subscribe_binance(recorded_streams(usdm)))
            await asyncio.sleep(0.5)  # not reading: the buffers fill and the pump waits
            assert server.sent < len(expected)
            assert message_of(await receive(ws)) == {"result": None, "id": 1}
            got = await receive_n(ws, len(expected))
        assert server.sent == len(expected)
    assert got == expected


async def test_the_pacer_pauses_only_to_pace_or_to_yield() -> None:
    fast = Pacer(None, yield_every=3)
    assert [fast.pause(0) for _ in range(6)] == [None, None, 0.0, None, None, 0.0]
    paced = Pacer(1000.0, yield_every=100)
    assert paced.pause(0) is None  # the first frame anchors the timeline and goes at once
    wait = paced.pause(10 * 10**9)  # 10 s recorded at 1000x: about 10 ms later
    assert wait is not None
    assert 0.0 < wait <= 0.01
    paced.restart()
    assert paced.pause(20 * 10**9) is None  # after a restart the next frame goes at once
