"""FeedConnection's own frame splitting, fed bytes as a socket would cut them: every message
once and in order, whatever the cut, and every frame it does not take (ping, close,
fragments, oversized, masked, reserved bits) answered by websockets as it would alone."""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader
from websockets.uri import parse_uri
from websockets.utils import accept_key

from marketstream.ingest.transport import FeedConnection

MAX_SIZE = 1 << 20


class Transport(asyncio.Transport):
    """Keeps what the client writes; reading pauses and resumes are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.paused = 0
        self.closed = False

    def write(self, data: Any) -> None:
        self.written += data

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.written += data

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def opened(
    max_queue: int = 10_000, *, deflate: bool = False
) -> tuple[FeedConnection, Transport, bytes]:
    """A connection after its request was sent; returns it, its transport and the server's
    handshake response to feed it (accepting permessage-deflate if `deflate`)."""
    protocol = ClientProtocol(
        parse_uri("ws://feed.test/"),
        max_size=MAX_SIZE,
        extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
    )
    connection = FeedConnection(protocol, max_queue=max_queue)
    transport = Transport()
    connection.connection_made(transport)
    request = protocol.connect()
    protocol.send_request(request)
    connection.send_data()
    key = request.headers["Sec-WebSocket-Key"]
    accept = accept_key(key)
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n"
        + ("Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else "")
        + "\r\n"
    ).encode()
    return connection, transport, response


def frame(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False)


def client_frames(written: bytes) -> list[Frame]:
    """The frames the client wrote after its handshake request (masked, as clients send)."""
    data = written[written.index(b"\r\n\r\n") + 4 :]
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames: list[Frame] = []
    while data and len(reader.buffer):
        parser = Frame.parse(reader.read_exact, mask=True)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


def feed(connection: FeedConnection, stream: bytes, cut: int) -> None:
    for start in range(0, len(stream), cut):
        connection.data_received(stream[start : start + cut])


async def messages(
    connection: FeedConnection, into: list[str | bytes] | None = None
) -> list[str | bytes]:
    got: list[str | bytes] = [] if into is None else into
    async with asyncio.timeout(10):
        async for batch in connection.batches():
            got.extend(batch)
    return got


SIZES = (0, 1, 125, 126, 127, 65535, 65536, 70_000)


def traffic() -> tuple[bytes, list[str | bytes]]:
    """Text and binary messages of every header size, a ping between them, a clean close."""
    stream = bytearray()
    expected: list[str | bytes] = []
    for i, size in enumerate(SIZES):
        text = (f"{i}:" + "x" * size)[: max(size, 1)]
        stream += frame(Opcode.TEXT, text.encode())
        expected.append(text)
        stream += frame(Opcode.BINARY, bytes([i]) * size)
        expected.append(bytes([i]) * size)
        if i == 2:
            stream += frame(Opcode.PING, b"are you there")
    stream += frame(Opcode.CLOSE, Close(1000, "bye").serialize())
    return bytes(stream), expected


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 127, 4096, 1 << 30])
async def test_every_message_once_in_order_however_the_bytes_are_cut(cut: int) -> None:
    connection, transport, response = opened()
    stream, expected = traffic()
    feed(connection, response + stream, cut)
    connection.connection_lost(None)
    assert await messages(connection) == expected
    answers = [(f.opcode, f.data) for f in client_frames(bytes(transport.written))]
    assert (Opcode.PONG, b"are you there") in answers  # websockets answered the ping
    assert answers[-1][0] is Opcode.CLOSE  # and the close


async def test_frames_in_the_handshake_read_are_split_after_it() -> None:
    connection, _, response = opened()
    connection.data_received(response + frame(Opcode.TEXT, b"first") + frame(Opcode.TEXT, b"s"))
    connection.data_received(frame(Opcode.TEXT, b"third")[:3])
    assert connection.protocol.state is State.OPEN
    assert [bytes(data) for _, data in connection._ready] == [b"first", b"s"]
    assert bytes(connection._rest) == frame(Opcode.TEXT, b"third")[:3]


async def test_a_fragmented_message_hands_the_rest_to_websockets_in_order() -> None:
    connection, _, response = opened()
    stream = (
        frame(Opcode.TEXT, b"a")
        + frame(Opcode.TEXT, b"fr", fin=False)
        + frame(Opcode.CONT, b"ag")
        + frame(Opcode.TEXT, b"b")
        + frame(Opcode.CLOSE, Close(1000, "").serialize())
    )
    feed(connection, response + stream, 4)
    connection.connection_lost(None)
    assert await messages(connection) == ["a", "frag", "b"]


async def test_a_compressed_frame_goes_to_websockets_which_refuses_it_unnegotiated() -> None:
    connection, _, response = opened()
    compressed = bytes([0x81 | 0x40, 2]) + b"zz"  # RSV1: permessage-deflate, not negotiated
    stream = frame(Opcode.TEXT, b"ok") + compressed
    feed(connection, response + stream, 1 << 20)
    connection.connection_lost(None)
    got: list[str | bytes] = []
    with pytest.raises(ConnectionClosedError) as raised:
        await messages(connection, got)
    assert got == ["ok"]
    assert raised.value.sent is not None
    assert raised.value.sent.code == 1002  # protocol error


async def test_an_oversized_frame_is_refused_by_websockets_without_being_buffered() -> None:
    connection, transport, response = opened()
    head = struct.pack("!BBQ", 0x81, 127, MAX_SIZE + 1)
    feed(connection, response + frame(Opcode.TEXT, b"ok") + head + b"x" * 100, 1 << 20)
    assert not connection._rest  # nothing kept waiting for the rest of it
    closes = [f for f in client_frames(bytes(transport.written)) if f.opcode is Opcode.CLOSE]
    assert Close.parse(closes[0].data).code == 1009  # message too big


async def test_a_masked_frame_from_the_server_is_a_protocol_error() -> None:
    connection, transport, response = opened()
    masked = Frame(Opcode.TEXT, b"hidden").serialize(mask=True)
    feed(connection, response + frame(Opcode.TEXT, b"ok") + masked, 1 << 20)
    closes = [f for f in client_frames(bytes(transport.written)) if f.opcode is Opcode.CLOSE]
    assert Close.parse(closes[0].data).code == 1002
    assert [bytes(data) for _, data in connection._ready] == [b"ok"]


async def test_a_frame_cut_short_by_eof_is_reported_not_delivered() -> None:
    connection, _, response = opened()
    feed(connection, response + frame(Opcode.TEXT, b"whole") + frame(Opcode.TEXT, b"cut")[:4], 3)
    connection.eof_received()
    connection.connection_lost(None)
    got: list[str | bytes] = []
    with pytest.raises(ConnectionClosedError):
        await messages(connection, got)
    assert got == ["whole"]


async def test_reading_pauses_above_the_queue_mark() -> None:
    connection, transport, response = opened(max_queue=4)
    feed(connection, response + frame(Opcode.TEXT, b"m") * 10, 1 << 20)
    assert transport.paused == 1
    assert len(connection._ready) == 10  # what arrived is kept; the socket stops reading


async def test_a_refused_handshake_stays_with_websockets() -> None:
    connection, _, _ = opened()
    body = b"frames? no: " + frame(Opcode.TEXT, b"x")
    connection.data_received(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    assert connection._split is False
    assert not connection._ready


@pytest.mark.parametrize("cut", [1, 7, 1 << 20])
async def test_compressed_messages_keep_their_place_among_plain_ones(cut: int) -> None:
    """With permessage-deflate a server may send either: compressed frames (RSV1) go to
    websockets, which inflates them with one context, in runs between the plain ones."""
    connection, _, response = opened(deflate=True)
    context = zlib.compressobj(wbits=-15)

    def compressed(text: str) -> bytes:
        data = context.compress(text.encode()) + context.flush(zlib.Z_SYNC_FLUSH)
        return bytes([0xC1, len(data[:-4])]) + data[:-4]  # FIN, RSV1, text; RFC 7692's tail cut

    stream = (
        frame(Opcode.TEXT, b"a")
        + compressed("b")
        + compressed("c")
        + frame(Opcode.TEXT, b"d")
        + compressed("e")
        + frame(Opcode.CLOSE, Close(1000, "").serialize())
    )
    feed(connection, response + stream, cut)
    connection.connection_lost(None)
    assert connection.protocol.extensions  # negotiated
    assert await messages(connection) == ["a", "b", "c", "d", "e"]
