"""FeedConnection: a feed read in batches gets every message once, in order, as `async for`
over a plain websockets connection would, whatever the server mixes in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError

from marketstream.ingest.transport import ClosingConnection, FeedConnection, connect_feed

pytestmark = pytest.mark.integration

Script = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def connected(
    script: Script, connection: type[ClosingConnection], max_queue: int = 4
) -> AsyncIterator[ClosingConnection]:
    async with (
        serve(script, "127.0.0.1", 0) as server,
        connect_feed(
            f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}",
            open_timeout_s=10,
            max_frame_bytes=1 << 20,
            max_queue=max_queue,
            connection=connection,
        ) as ws,
    ):
        assert isinstance(ws, connection)
        yield ws


@asynccontextmanager
async def feed(script: Script, max_queue: int = 4) -> AsyncIterator[FeedConnection]:
    async with connected(script, FeedConnection, max_queue) as ws:
        assert isinstance(ws, FeedConnection)
        yield ws


async def read_all(ws: FeedConnection, into: list[str | bytes] | None = None) -> list[str | bytes]:
    got: list[str | bytes] = [] if into is None else into
    async with asyncio.timeout(60):
        async for batch in ws.batches():
            got.extend(batch)
    return got


async def test_every_message_in_order_through_pauses_and_a_clean_close() -> None:
    sent = [f'{{"n":{i}}}' for i in range(2000)]  # far more than max_queue: reading pauses

    async def script(ws: ServerConnection) -> None:
        for message in sent:
            await ws.send(message)
        await ws.close(1001, "going away")

    async with feed(script) as ws:
        assert await read_all(ws) == sent  # 1001 ends the iteration, as `async for` does


async def test_fragmented_binary_and_non_utf8_messages_keep_their_place() -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send("a")
        await ws.send(["fr", "ag"])  # one message in two frames: websockets reassembles it
        await ws.send("b")
        await ws.send(b"\x00\x01")
        await ws.send(["c", "d"])
        await ws.close()

    async with feed(script) as ws:
        assert await read_all(ws) == ["a", "frag", "b", b"\x00\x01", "cd"]


async def test_text_that_is_not_utf8_reaches_the_mapper_as_bytes() -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send("ok")
        await ws.send(b"\xff\xfe", text=True)
        await ws.send("after")
        await ws.close()

    async with feed(script) as ws:
        assert await read_all(ws) == ["ok", b"\xff\xfe", "after"]


async def test_an_abnormal_close_raises_after_every_message_received() -> None:
    async def script(ws: ServerConnection) -> None:
        for i in range(10):
            await ws.send(str(i))
        await ws.close(1011, "internal error")

    async with feed(script) as ws:
        got: list[str | bytes] = []
        with pytest.raises(ConnectionClosedError):
            await read_all(ws, got)
        assert got == [str(i) for i in range(10)]


@pytest.mark.parametrize("connection", [ClosingConnection, FeedConnection])
async def test_closing_while_reading_is_paused_completes_the_closing_handshake(
    connection: type[ClosingConnection],
) -> None:
    """A caller that stops reading with the queue full (a capture that has its frames, ingest
    stopping on a busy feed) must still get the server's close frame: reading paused at the
    queue's high mark used to leave it unread until `close_timeout` gave up on it (1006)."""

    async def script(ws: ServerConnection) -> None:
        for i in range(200):  # far more than max_queue: reading pauses
            await ws.send(str(i))
        await ws.wait_closed()  # answers the client's close, as a live feed does

    async with connected(script, connection) as ws:
        ws.close_timeout = 2.0  # the library's 10 s would only make the failure slower
        if isinstance(ws, FeedConnection):
            assert await anext(ws.batches())  # some messages; reading resumes for the rest
        else:
            assert await ws.recv() == "0"
        async with asyncio.timeout(10):  # until the queue is full again and reading paused
            while ws.transport.is_reading():
                await asyncio.sleep(0.01)
        await ws.close()
        assert ws.close_code == 1000  # the server's close frame came back: 1006 if it never did
