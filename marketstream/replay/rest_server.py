"""A local polled source: serves one REST-only recording over HTTP/1.1, with faults on demand.

A poller keeps one connection and asks every tick, so this is a small keep-alive HTTP
server (asyncio streams and h11, no framework: nothing to configure, no signal handlers,
its connections counted) rather than the WebSocket server's plain-HTTP path, which closes
every connection. The replay position is the time since the server started times `speed`,
mapped onto the recording from its first answer; by default it loops over the recording,
so a test never runs out of answers (`loop=False`: 410 once it ends).

A GET whose path and query (any query order) is a recorded request target is answered with
the answer recorded for it last at or before the position, with its status, headers and
body. Faults (`FaultPlan`) turn every N-th replay request into a 429 or a 5xx in the
source's own shape (the `fault_answer` callable the caller passes in), or hold its answer
back; a held answer delays nobody else. Control: `GET /_control/status`,
`GET /_control/faults` (plan and counters) and `POST /_control/faults` (a new plan).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

import h11
import orjson

from marketstream.errors import MarketStreamError
from marketstream.replay.faults import (
    FaultAnswer,
    FaultCounters,
    FaultPlan,
    parse_plan,
    plain_fault_answer,
)
from marketstream.replay.rest_recording import RestRecording, scan_rest_recording
from marketstream.schemas.instruments import SOURCES
from marketstream.signals import stop_event

log = logging.getLogger(__name__)

MAX_REQUEST_BODY: Final = 64 * 1024  # only /_control/faults takes a body: a small JSON plan
_READ_SIZE: Final = 64 * 1024
# Recorded headers the server does not repeat: it frames the body itself (and the recorded
# body is already decoded), and the connection is its own.
_FRAMING: Final = frozenset(
    {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive", "date"}
)

Answer = tuple[int, list[tuple[str, str]], bytes]


class RestReplayServer:
    """`async with RestReplayServer(path, fault_answer=...) as server:` serves until the block
    ends; `server.http_url` is its base URL."""

    def __init__(
        self,
        recording: Path | str,
        *,
        fault_answer: FaultAnswer = plain_fault_answer,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        loop: bool = True,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        sources: Collection[str] = SOURCES,
    ) -> None:
        """`clock` moves the replay position (monotonic seconds); `wall_clock` is the `now`
        handed to `fault_answer` (epoch seconds, for reset headers); `sleep` holds a delayed
        answer back (tests pass one they release themselves)."""
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.recording = Path(recording)
        self.host = host
        self.speed = speed
        self.loop = loop
        self._port = port
        self._fault_answer = fault_answer
        self._plan = faults if faults is not None else FaultPlan()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._sources = sources
        self.counters = FaultCounters()
        self.connections_total = 0
        self._started = 0.0
        self._handlers: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._source: RestRecording | None = None
        self._server: asyncio.Server | None = None

    # lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._source = await asyncio.to_thread(scan_rest_recording, self.recording, self._sources)
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self._port)
        except OSError as exc:
            where = f"{self.host}:{self._port}"
            raise MarketStreamError(f"replay server cannot listen on {where}: {exc}") from None
        self._port = self._server.sockets[0].getsockname()[1]  # the one picked for port 0
        self._started = self._clock()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    # addresses and state ---------------------------------------------------------------

    @property
    def source(self) -> RestRecording:
        if self._source is None:
            raise RuntimeError("RestReplayServer is not started: use `async with`")
        return self._source

    @property
    def exchange(self) -> str:
        return self.source.exchange

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("RestReplayServer is not started: use `async with`")
        return self._port

    @property
    def http_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def faults(self) -> FaultPlan:
        return self._plan

    def set_faults(self, plan: FaultPlan) -> None:
        """Replace the plan; its request numbers start again from 1."""
        self._plan = plan
        self.counters.since_plan = 0

    def elapsed_ns(self) -> int:
        """Recording time since the start: wall time since the start times the speed."""
        return int((self._clock() - self._started) * self.speed * 1e9)

    def status(self) -> dict[str, Any]:
        position = self.source.position(self.elapsed_ns(), loop=self.loop)
        return {
            "mode": "rest",
            "exchange": self.exchange,
            "recording": str(self.recording),
            "answers": len(self.source),
            "targets": self.source.targets,
            "speed": self.speed,
            "loop": self.loop,
            "loops": position.loops,
            "position_ns": position.recording_ns,
            "cycle_ns": self.source.cycle_ns,
            "ended": position.ended,
            "requests": self.counters.requests,
            "connections": len(self._writers),
            "connections_total": self.connections_total,
        }

    def faults_status(self) -> dict[str, Any]:
        return {"plan": self._plan.to_json(), "counters": self.counters.to_json()}

    # connections -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        self.connections_total += 1
        conn = h11.Connection(h11.SERVER)
        try:
            await self._serve_requests(conn, reader, writer)
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                error = _json(exc.error_status_hint, {"error": f"bad HTTP request: {exc}"})
                with contextlib.suppress(ConnectionError):
                    await _write(conn, writer, *error)
        except ConnectionError:
            pass  # the client went away
        except asyncio.CancelledError:
            # The server is closing (`__aexit__`). Returning, not raising: asyncio's stream
            # callback would log a cancelled handler as an error.
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    async def _serve_requests(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Request after request on one connection, until either side closes it."""
        while (request := await _read_request(conn, reader)) is not None:
            event, body = request
            method = event.method.decode("ascii", "replace")
            target = event.target.decode("ascii", "replace")
            try:
                answer = await self._answer(method, target, body)
            except Exception:  # a bug (in a source's fault_answer, say) answers 500, logged
                log.exception("replay: %s %s failed", method, target)
                answer = _json(500, {"error": f"replay server failed on {method} {target}"})
            await _write(conn, writer, *answer)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # the client asked to close, or spoke HTTP/1.0
            conn.start_next_cycle()

    # answers ---------------------------------------------------------------------------

    async def _answer(self, method: str, target: str, body: bytes | None) -> Answer:
        path = urlsplit(target).path
        if path == "/_control/status" and method == "GET":
            return _json(200, self.status())
        if path == "/_control/faults":
            return self._faults_control(method, body)
        if method != "GET":
            return _json(405, {"error": f"{method} {path}: only GET is replayed"})
        if body is None:
            return _json(413, {"error": f"request body over {MAX_REQUEST_BODY} bytes"})
        return await self._replay(target)

    def _faults_control(self, method: str, body: bytes | None) -> Answer:
        if method == "POST":
            if body is None:
                return _json(413, {"error": f"fault plan over {MAX_REQUEST_BODY} bytes"})
            try:
                self.set_faults(parse_plan(body))
            except ValueError as exc:
                return _json(400, {"error": str(exc)})
            log.info("replay: fault plan now %s", self._plan.to_json())
        elif method != "GET":
            return _json(405, {"error": f"{method} /_control/faults: GET or POST"})
        return _json(200, self.faults_status())

    async def _replay(self, target: str) -> Answer:
        counters = self.counters
        counters.requests += 1
        counters.since_plan += 1
        number, plan = counters.since_plan, self._plan
        delay = plan.delay_s(number)
        if delay > 0:
            counters.delayed += 1
            await self._sleep(delay)  # this answer only: other requests go on meanwhile
        status = plan.status(number)
        if status is not None:
            if status == 429:
                counters.injected_429 += 1
            else:
                counters.injected_5xx += 1
            fault_headers, body = self._fault_answer(status, plan.retry_after_s, self._wall_clock())
            return status, list(fault_headers.items()), body
        position = self.source.position(self.elapsed_ns(), loop=self.loop)
        if position.ended:
            counters.ended += 1
            error = f"the recording {self.recording.name} has ended (the server runs without loop)"
            return _json(410, {"error": error})
        answer = self.source.answer(target, position.recording_ns)
        if answer is None:
            counters.not_found += 1
            return _json(404, {"error": f"no recorded answer for GET {target}"})
        counters.answered += 1
        headers = [(k, v) for k, v in answer.headers if k.lower() not in _FRAMING]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("content-type", "application/json"))
        return answer.status, headers, answer.body


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bytes | None] | None:
    """The next request and its body (None if over MAX_REQUEST_BODY); None once the client
    closed the connection between requests."""
    request: h11.Request | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_READ_SIZE))  # b"": the client closed
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size <= MAX_REQUEST_BODY:
                chunks.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None  # h11 sends a Request first
            return request, b"".join(chunks) if size <= MAX_REQUEST_BODY else None
        else:  # ConnectionClosed, or PAUSED (never: each cycle is started after its answer)
            return None


async def _write(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    status: int,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> None:
    fields = [(name.encode(), value.encode("latin-1", "replace")) for name, value in headers]
    fields += [(b"date", email.utils.formatdate(usegmt=True).encode())]
    fields += [(b"content-length", str(len(body)).encode())]
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    data = conn.send(h11.Response(status_code=status, headers=fields, reason=reason))
    writer.write(b"".join([data or b"", conn.send(h11.Data(data=body)) or b""]))
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()


def _json(status: int, value: object) -> Answer:
    return status, [("content-type", "application/json")], orjson.dumps(value)


async def serve_rest_until_signal(
    server: RestReplayServer, announce: Callable[[str], None]
) -> None:
    """Run `server` until SIGINT or SIGTERM; `announce` gets its address once listening."""
    with stop_event() as stop:
        async with server:
            source = server.source
            loop = "looping" if server.loop else "once"
            announce(
                f"{server.http_url} ({server.exchange}: {len(source)} REST answers for "
                f"{len(source.targets)} targets from {server.recording}, {loop})"
            )
            await stop.wait()
