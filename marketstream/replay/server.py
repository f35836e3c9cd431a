"""A local exchange: serves one recording over WebSocket, speaking the exchange's protocol.

One pump walks the recording with a single cursor and hands each frame to every open
connection subscribed to it. The cursor moves only while some connection is subscribed,
so a client that reconnects continues exactly where the previous connection stopped: a
frame counts as sent once `send` returned, and a frame whose every send failed is offered
again to the next connection. Frames nobody subscribed to are skipped, as live.

Drops (`drop_every`, `GET /_control/drop`) are clean closes with code 1001 (going away):
frames sent before the close frame reach the client in order, which an abrupt close would
not guarantee, and clients must reconnect on any close anyway. Plain HTTP on the same port
serves `/_control/status`, `/_control/drop` and the recording's REST responses.

The server never negotiates permessage-deflate, whatever the client offers: on loopback it
saves no bandwidth and costs both sides a zlib pass per frame (most of the server's CPU at
maximum speed). Clients still offer it, as they should to a live exchange over the Internet.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from marketstream.errors import MarketStreamError
from marketstream.replay.dialect import Dialect, Session
from marketstream.replay.source import Pacer, ReplayFrame, ReplaySource, scan_recording
from marketstream.signals import stop_event

log = logging.getLogger(__name__)

GOING_AWAY = 1001


@dataclass(eq=False, slots=True)
class _Connection:
    ws: ServerConnection
    session: Session
    # Held while answering the client or sending a frame: a subscription's answer goes out
    # before the first frame it lets through.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sent: int = 0
    closing: bool = False
    # Frames serialized and not yet written: the pump writes a burst at once (`_flush`).
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0


class ReplayServer:
    """`async with ReplayServer(path, DIALECTS) as server:` serves until the block ends.

    `dialects` maps exchange names to their protocols (the venue registry's `DIALECTS`); the
    recording's exchange picks one.
    """

    def __init__(
        self,
        recording: Path | str,
        dialects: Mapping[str, Dialect],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        max_speed: bool = False,
        drop_every: int | None = None,
        settle_s: float = 0.0,
    ) -> None:
        """`settle_s`: hold the first frame until no client has sent a message for that long,
        so a client that paces its subscriptions (one channel a second, say) has them all
        in place before a replay at maximum speed runs through the recording."""
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if drop_every is not None and drop_every < 1:
            raise ValueError(f"drop_every must be at least 1, got {drop_every}")
        self.recording = Path(recording)
        self._dialects = dialects
        self.host = host
        self._port = port
        self._pacer = Pacer(None if max_speed else speed)
        self._drop_every = drop_every
        self._settle_s = settle_s
        self._last_message = 0.0  # loop time of the last message from any client
        self.finished = asyncio.Event()
        self.sent = 0
        self.skipped = 0
        self.messages = 0  # every message sent: frames and answers (what clients count)
        self._replayed_ns: int | None = None  # recv_ns of the frame the cursor passed last
        self._connections: set[_Connection] = set()
        self._subscribed = asyncio.Event()  # some open connection wants frames
        self._closers: set[asyncio.Task[None]] = set()
        self._source: ReplaySource | None = None
        self._server: Server | None = None
        self._pump_task: asyncio.Task[None] | None = None

    # lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._source = await asyncio.to_thread(scan_recording, self.recording, self._dialects)
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self._port,
                process_request=self._process_request,
                compression=None,  # see the module docstring
            )
        except OSError as exc:
            where = f"{self.host}:{self._port}"
            raise MarketStreamError(f"replay server cannot listen on {where}: {exc}") from None
        self._port = self._server.sockets[0].getsockname()[1]  # the one picked for port 0
        self._pump_task = asyncio.create_task(self._pump(self._source), name="replay-pump")
        self._pump_task.add_done_callback(_report_failure)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
        if self._server is not None:
            self._server.close()  # closes open connections with 1001 too
            await self._server.wait_closed()
        await asyncio.gather(*self._closers, return_exceptions=True)

    # addresses and state ---------------------------------------------------------------

    @property
    def source(self) -> ReplaySource:
        if self._source is None:
            raise RuntimeError("ReplayServer is not started: use `async with`")
        return self._source

    @property
    def exchange(self) -> str:
        return self.source.exchange

    @property
    def total(self) -> int:
        return self.source.total

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ReplayServer is not started: use `async with`")
        return self._port

    @property
    def http_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.http_url.removeprefix("http") + self.source.dialect.ws_path

    def status(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "recording": str(self.recording),
            "sent": self.sent,
            "skipped": self.skipped,
            "messages": self.messages,
            "total": self.total,
            "ignored": self.source.ignored,
            "connections": len(self._open()),
            "finished": self.finished.is_set(),
        }

    async def drop_connections(self) -> int:
        """Close every open connection (1001) and wait for the closes; return how many."""
        open_now = self._open()
        for conn in open_now:
            conn.closing = True
        self._update_subscribed()
        closers = [self._close(c, "replay: dropped on request") for c in open_now]
        await asyncio.gather(*closers, return_exceptions=True)
        return len(closers)

    # the pump --------------------------------------------------------------------------

    async def _pump(self, source: ReplaySource) -> None:
        """Frames go out without a suspension while every target takes them at once (the
        common case at maximum speed): no coroutine, lock or `ws.send` per frame; the pump
        awaits only to pace, to yield, or for a connection that cannot take a frame now."""
        frames = source.frames()
        pacer = self._pacer
        try:
            frame = next(frames, None)
            if frame is not None and self._settle_s > 0:
                await self._settle()
            while frame is not None:
                if not self._subscribed.is_set():
                    self._flush()
                    await self._subscribed.wait()
                    pacer.restart()
                pause = pacer.pause(frame.recv_ns)
                if pause is not None:
                    self._flush()
                    await asyncio.sleep(pause)
                    if not self._subscribed.is_set():
                        continue  # everyone left while we waited: keep it for the next one
                targets = [
                    c for c in self._connections if not c.closing and _wants(c.session, frame)
                ]
                if not targets:
                    self.skipped += 1
                else:
                    done = self._send_at_once(targets, frame)
                    if done < len(targets):
                        later = [await self._send(c, frame) for c in targets[done:]]
                        if not done and not any(later):
                            continue  # every target failed: offer the frame again
                    self.sent += 1
                self._replayed_ns = frame.recv_ns
                frame = next(frames, None)
        finally:
            self._flush()
            frames.close()
        self.finished.set()
        log.info("replay of %s finished: %d frames sent", source.path, self.sent)

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        await self._subscribed.wait()
        while (quiet := loop.time() - self._last_message) < self._settle_s:
            await asyncio.sleep(self._settle_s - quiet)
        self._pacer.restart()

    def _send_at_once(self, targets: list[_Connection], frame: ReplayFrame) -> int:
        """Add the frame to each target's burst (`_flush`) while the target can take it
        without awaiting: not held by an answer being sent (its lock), and its socket buffer
        has room. Nothing can run between the checks and the write. How many took it."""
        for done, conn in enumerate(targets):
            if conn.lock.locked() or not _serialize(conn, conn.session.render(frame.text)):
                return done
            self._sent_to(conn)
        return len(targets)

    async def _send(self, conn: _Connection, frame: ReplayFrame) -> bool:
        """The frame to one connection that could not take it at once: after the answer
        being sent, or once a slow client has read enough."""
        if not conn.closing and _wants(conn.session, frame) and self._send_at_once([conn], frame):
            return True
        return await self._send_later(conn, frame)

    async def _send_later(self, conn: _Connection, frame: ReplayFrame) -> bool:
        self._flush()  # before anything else may run: the frames so far go first
        async with conn.lock:
            if conn.closing or not _wants(conn.session, frame):
                return False
            try:
                await conn.ws.send(conn.session.render(frame.text))
            except ConnectionClosed:
                conn.closing = True  # the handler forgets it; never offer it frames again
                self._update_subscribed()
                return False
        self._sent_to(conn)
        return True

    def _sent_to(self, conn: _Connection) -> None:
        conn.sent += 1
        self.messages += 1
        if self._drop_every is not None and conn.sent >= self._drop_every:
            self._start_close(conn, f"replay: drop after {conn.sent} frames")

    def _flush(self) -> None:
        """Write every connection's burst, one write each: one send per frame costs the
        server more than the frame itself (on loopback a send runs the receiver's TCP
        path too). The pump calls this before each point where it may be suspended, so
        whenever other code runs (answers, closes, pings, status) nothing is pending."""
        for conn in self._connections:
            if conn.pending:
                conn.ws.transport.write(b"".join(conn.pending))
                conn.pending.clear()
                conn.pending_bytes = 0

    # connections -----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        conn = _Connection(ws, self.source.dialect.open_session(path))
        self._connections.add(conn)
        self._update_subscribed()
        try:
            async for message in ws:
                self._last_message = asyncio.get_running_loop().time()
                text = message if isinstance(message, str) else message.decode(errors="replace")
                async with conn.lock:
                    for answer in conn.session.on_message(text):
                        await ws.send(answer)
                        self.messages += 1
                self._update_subscribed()
        except ConnectionClosed:
            pass
        finally:
            conn.closing = True
            self._connections.discard(conn)
            self._update_subscribed()

    def _open(self) -> list[_Connection]:
        return [c for c in self._connections if not c.closing]

    def _update_subscribed(self) -> None:
        if any(c.session.active for c in self._open()):
            self._subscribed.set()
        else:
            self._subscribed.clear()

    def _start_close(self, conn: _Connection, reason: str) -> None:
        conn.closing = True  # now, not when the task runs: the pump must not send again
        self._update_subscribed()
        task = asyncio.create_task(self._close(conn, reason))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close(self, conn: _Connection, reason: str) -> None:
        await conn.ws.close(GOING_AWAY, reason)

    # plain HTTP ------------------------------------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if self.source.dialect.accepts_path(request.path):
                return None
            return _json(HTTPStatus.NOT_FOUND, {"error": f"no feed at {request.path}"})
        return await self._http_answer(request)

    async def _http_answer(self, request: Request) -> Response:
        """Plain HTTP: control requests, then the recording's REST responses."""
        if request.method != "GET":
            return _json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "only GET is served"})
        path = urlsplit(request.path).path
        if path == "/_control/status":
            return _json(HTTPStatus.OK, self.status())
        if path == "/_control/drop":
            return _json(HTTPStatus.OK, {"dropped": await self.drop_connections()})
        body = self.source.rest.lookup(request.path, self._replayed_ns)
        if body is None:
            error = f"no recorded response for GET {request.path}"
            return _json(HTTPStatus.NOT_FOUND, {"error": error})
        return _response(HTTPStatus.OK, body.encode())


def _serialize(conn: _Connection, text: str) -> bool:
    """Frame one text message into the connection's burst without `ws.send`'s per-message
    context manager, coroutine and drain check (most of the server's CPU per frame at
    maximum speed): only while the connection is open and its write buffer, burst
    included, is below the high-water mark. Otherwise False, and the caller uses `ws.send`,
    which waits for a slow client and raises ConnectionClosed."""
    ws = conn.ws
    if ws.protocol.state is not State.OPEN:
        return False
    transport = ws.transport
    if (
        transport.get_write_buffer_size() + conn.pending_bytes
        >= (transport.get_write_buffer_limits()[1])
    ):
        return False
    payload = text.encode()
    header = _text_header(len(payload))
    conn.pending += (header, payload)
    conn.pending_bytes += len(header) + len(payload)
    return True


def _text_header(size: int) -> bytes:
    """RFC 6455's header of a whole, unmasked (a server's) text frame: websockets' own framing
    of each message (a Frame object, its checks, its output buffer) was a tenth of the
    replay's CPU. No extension is ever negotiated here; an uncompressed frame (RSV1 clear)
    would be valid under permessage-deflate too (RFC 7692)."""
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size)
    return struct.pack("!BBQ", 0x81, 127, size)


def _wants(session: Session, frame: ReplayFrame) -> bool:
    if frame.route.everyone:
        return session.active
    return session.wants(frame.route)


def _report_failure(task: asyncio.Task[None]) -> None:
    """A pump that dies (the file changed under it) must say so, not just go quiet."""
    if not task.cancelled() and task.exception() is not None:
        log.error("replay stopped: %s", task.exception())


def _json(status: HTTPStatus, value: object) -> Response:
    return _response(status, orjson.dumps(value))


def _response(status: HTTPStatus, body: bytes) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "application/json"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


async def serve_until_signal(server: ReplayServer, announce: Callable[[str], None]) -> None:
    """Run `server` until SIGINT or SIGTERM; `announce` gets its addresses once listening."""
    with stop_event() as stop:
        async with server:
            announce(
                f"{server.ws_url} {server.http_url} "
                f"({server.exchange}: {server.total} frames from {server.recording})"
            )
            await stop.wait()
