"""The warm gateway: the one process that opens the chdb engine directory, serving it over HTTP.

chdb locks its directory (`<path>/status`) for a single process, read-only opens included, yet
`marketstream query` and `archive status` must run while `marketstream run` and the archiver
do. So one long-running process owns the engine and speaks the part of ClickHouse's HTTP
interface that clickhouse-connect's HTTP client uses; every other process, locally and in
production (a real ClickHouse server), reaches the warm tier the same way: an http:// DSN.

What is served, as ClickHouse serves it:
- `GET /ping` answers `Ok.`; `GET|POST /` runs one statement. Its SQL is the `query` parameter
  and the body joined by a newline; `INSERT ... FORMAT <fmt>` followed by data streams the
  data into the engine as it arrives (any input format the engine reads: Native, Arrow, ...).
- Parameters: `database`, `session_id` (one engine connection per session, so `USE` and `SET`
  stay within it; `session_timeout`, `session_check` as in ClickHouse), `query_id`,
  `default_format`, `param_<name>` (query parameters). Every other parameter is a setting,
  applied to the session with `SET` for that request (see `_apply_settings`).
- Request bodies may be compressed (`Content-Encoding`: lz4, zstd, gzip, deflate), so clients
  keep their default `compress=True`; responses are never compressed, which the client reads
  from the absent `Content-Encoding`.
- Answers carry X-ClickHouse-Query-Id, -Format (when the statement has a result set),
  -Timezone, -Summary and -Server-Display-Name; a failure is HTTP 500 (400/501 for requests the
  gateway cannot take) with X-ClickHouse-Exception-Code and ClickHouse's error text, which
  clickhouse-connect raises as DatabaseError with the code and name.

Ignored because harmless: `wait_end_of_query` (a result is complete before its first byte is
sent), `client_protocol_version` (answered in protocol 0; the client falls back on its own),
progress headers, `enable_http_compression`, `buffer_size`, credentials. Refused: `compress=1`
or `decompress=1` (ClickHouse's internal block compression) and external data (multipart files).

What a ClickHouse server would refuse, the gateway refuses too (see warm_gateway_policy):
`GET` is read-only (the statement runs on a `readonly=2` connection: code 164 READONLY for a
write); `file()` reads the cold directory only, `s3()` the cold bucket only, other table
functions and engines that reach files, hosts or programs are refused; one statement per
request. When bound to loopback, a `Host` header naming another host is refused (403): a web
page cannot reach the gateway through DNS rebinding. Bodies larger than `max_body_bytes` are
refused (413) before they are read, sessions are limited in number and idle time.

No authentication: the gateway binds 127.0.0.1 unless told otherwise, and is for one machine.
Sessions run concurrently, each on its own engine connection (the engine is multi-threaded);
within a session one statement runs at a time, as in ClickHouse.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import http.server
import importlib
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

import chdb

from marketstream.errors import ServiceError
from marketstream.gateway.policy import (
    PINNED_SETTINGS,
    SETTING_CONSTRAINT_VIOLATION,
    Refused,
    SourcePolicy,
    check_statement,
    pinned_setting,
)
from marketstream.signals import thread_stop_event
from marketstream.tiers.clickhouse import ENGINE_IN_USE, engine_holder

DEFAULT_HOST = "127.0.0.1"  # loopback: there is no authentication
DEFAULT_PORT = 8123  # ClickHouse's HTTP port
READ_CHUNK = 1 << 20
INSERT_HEAD_LIMIT = 256 * 1024  # an INSERT ... FORMAT header longer than this is not one
DEFAULT_SESSION_TIMEOUT_S = 60.0  # ClickHouse's default
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
REAP_INTERVAL_S = 1.0  # how often idle sessions are looked for
IDLE_CONNECTION_TIMEOUT_S = 60.0  # an idle keep-alive connection is closed after this
CLOSE_WAIT_S = 10.0  # at shutdown, how long a running statement may take (stop() waits 15 s)

# ClickHouse error codes for what the gateway itself refuses (names as ClickHouse spells them).
BAD_ARGUMENTS = (36, "BAD_ARGUMENTS")
NOT_IMPLEMENTED = (48, "NOT_IMPLEMENTED")
UNKNOWN_FORMAT = (73, "UNKNOWN_FORMAT")
CANNOT_READ_ALL_DATA = (33, "CANNOT_READ_ALL_DATA")
ABORTED = (236, "ABORTED")
SESSION_NOT_FOUND = (372, "SESSION_NOT_FOUND")
SESSION_IS_LOCKED = (373, "SESSION_IS_LOCKED")
TOO_MANY_SIMULTANEOUS_QUERIES = (202, "TOO_MANY_SIMULTANEOUS_QUERIES")
STD_EXCEPTION = (1001, "STD_EXCEPTION")

# Parameters of the HTTP interface itself; every other parameter is a setting.
HTTP_PARAMS = frozenset(
    {
        "query", "database", "default_format", "query_id", "quota_key", "role", "user",
        "password", "session_id", "session_timeout", "session_check", "compress", "decompress",
        "client_protocol_version", "buffer_size", "wait_end_of_query", "stacktrace",
    }
)  # fmt: skip
# chdb's Python layer turns these "formats" into Python objects instead of bytes.
PYTHON_ONLY_FORMATS = frozenset({"arrowtable", "dataframe", "datastore", "debug"})
TSV_WITH_NAMES = {
    "tabseparated": "TabSeparatedWithNames",
    "tsv": "TSVWithNames",
    "tabseparatedraw": "TabSeparatedRawWithNames",
    "tsvraw": "TSVRawWithNames",
}

_SKIP = r"(?:\s|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*"  # whitespace and comments before a statement
_FIRST_WORD = re.compile(_SKIP + r"(?P<word>[A-Za-z]+)(?P<after>[^A-Za-z]|\Z)", re.DOTALL)
# ClickHouse's rule: the data starts after the format name, its blanks and one line break.
_INSERT_DATA_HEAD = re.compile(
    _SKIP
    + r"(?P<statement>INSERT\s.*?)\sFORMAT\s+(?P<format>[A-Za-z_][A-Za-z0-9_]*)[ \t\f]*\r?\n?",
    re.DOTALL | re.IGNORECASE,
)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.DOTALL)
_INLINE_DATA_WORD = re.compile(r"\b(?:VALUES|SELECT|INFILE)\b", re.IGNORECASE)
_OUTPUT_FORMAT = re.compile(
    r"\sFORMAT\s+(?P<format>[A-Za-z_][A-Za-z0-9_]*)(?:\s+SETTINGS\s[^;]*)?\s*;?\s*\Z",
    re.IGNORECASE,
)
_SETTING_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_ERROR_CODE = re.compile(r"Code: (\d+)")

log = logging.getLogger(__name__)

Headers = Mapping[str, str]  # request headers, names in lower case


@dataclass(frozen=True)
class GatewayOptions:
    """Limits and sources of one gateway (`services.warm_gateway` and the cold endpoint)."""

    max_body_bytes: int = 256 << 20
    max_sessions: int = 256
    max_session_timeout_s: float = 3600.0  # ClickHouse's max_session_timeout
    policy: SourcePolicy = field(default_factory=SourcePolicy)


class Reader(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def readline(self, size: int, /) -> bytes: ...


def _connect(path: Path, *, readonly: bool = False) -> Any:
    """A new connection to the engine in path (the engine starts with the first one).

    Its settings are the connection's own: the pinned ones, and readonly=2 for GET requests.
    """
    settings = {**PINNED_SETTINGS, **({"readonly": "2"} if readonly else {})}
    return chdb.connect(f"{path}?{urllib.parse.urlencode(settings)}")  # type: ignore[no-untyped-call]


class QueryError(Exception):
    """A failed request, answered the way ClickHouse answers one: code, text, HTTP status."""

    def __init__(self, code: int, text: str, *, status: int = 500) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.status = status

    @classmethod
    def of(cls, error: tuple[int, str], message: str, *, status: int = 500) -> Self:
        """An error of the gateway's own, worded as ClickHouse words its errors."""
        code, name = error
        return cls(code, f"Code: {code}. DB::Exception: {message}. ({name})", status=status)


class BodyError(QueryError):
    """The request body cannot be read to its end: the connection cannot carry another request."""


def engine_error(exc: BaseException) -> QueryError:
    """An error raised by the engine, its own text and code passed on unchanged."""
    text = str(exc).strip() or type(exc).__name__
    start = text.find("Code: ")
    text = text[start:] if start >= 0 else text  # drop chdb's "Streaming insert ...:" prefix
    match = _ERROR_CODE.match(text)
    if match is None:
        return QueryError.of(STD_EXCEPTION, text)
    return QueryError(int(match.group(1)), text)


# --- the request body: length or chunks, then Content-Encoding ----------------------------


def content_length(headers: Headers) -> int:
    try:
        return int(headers.get("content-length") or 0)
    except ValueError:
        raise BodyError.of(BAD_ARGUMENTS, "Content-Length is not a number", status=400) from None


def too_large(limit: int) -> BodyError:
    return BodyError.of(
        BAD_ARGUMENTS,
        f"the request body is larger than {limit} bytes (services.warm_gateway.max_body_bytes)",
        status=413,
    )


def _bounded(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """chunks, until more than limit bytes went through: then BodyError (413)."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise too_large(limit)
        yield chunk


def _raw_body(rfile: Reader, headers: Headers) -> Iterator[bytes]:
    """The body as sent: Content-Length bytes, or the chunks of a chunked body."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        yield from _chunked_body(rfile)
        return
    remaining = content_length(headers)
    while remaining > 0:
        piece = _read(rfile, min(remaining, READ_CHUNK))
        remaining -= len(piece)
        yield piece


def _chunked_body(rfile: Reader) -> Iterator[bytes]:
    while True:
        line = _readline(rfile)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyError.of(
                BAD_ARGUMENTS, f"bad chunk size line {line[:40]!r}", status=400
            ) from None
        if size == 0:
            while _readline(rfile) not in (b"\r\n", b"\n"):
                pass  # trailers
            return
        while size > 0:
            piece = _read(rfile, min(size, READ_CHUNK))
            size -= len(piece)
            yield piece
        _readline(rfile)  # the CRLF that ends each chunk


def _read(rfile: Reader, size: int) -> bytes:
    try:
        piece = rfile.read(size)
    except OSError as exc:
        raise BodyError.of(CANNOT_READ_ALL_DATA, f"reading the body: {exc}", status=400) from None
    if not piece:
        raise BodyError.of(CANNOT_READ_ALL_DATA, "the body ended early", status=400)
    return piece


def _readline(rfile: Reader) -> bytes:
    try:
        line = rfile.readline(8192)
    except OSError as exc:
        raise BodyError.of(CANNOT_READ_ALL_DATA, f"reading the body: {exc}", status=400) from None
    if not line:
        raise BodyError.of(CANNOT_READ_ALL_DATA, "the chunked body ended early", status=400)
    return line


def _zstd_module() -> Any:
    try:
        return importlib.import_module("compression.zstd")  # Python 3.14+
    except ImportError:
        return importlib.import_module("backports.zstd")


_DECOMPRESSORS: dict[str, Callable[[], Any]] = {
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "deflate": lambda: zlib.decompressobj(zlib.MAX_WBITS),
    "lz4": lambda: importlib.import_module("lz4.frame").LZ4FrameDecompressor(),
    "zstd": lambda: _zstd_module().ZstdDecompressor(),
}


def _decoded(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """Decompress a body that may hold several frames: clickhouse-connect writes one per block."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    new = _DECOMPRESSORS.get(encoding)
    if new is None:
        raise QueryError.of(
            NOT_IMPLEMENTED,
            f"Content-Encoding {encoding!r} is not supported: expected one of "
            f"{', '.join(sorted(_DECOMPRESSORS))} or none",
            status=501,
        )
    decompressor, pending = _new_decompressor(new, encoding), False
    for chunk in chunks:
        data = chunk
        while data:
            try:
                out = decompressor.decompress(data)
            except (zlib.error, RuntimeError, ValueError, EOFError) as exc:
                raise QueryError.of(
                    BAD_ARGUMENTS, f"the body is not valid {encoding}: {exc}", status=400
                ) from None
            pending = not decompressor.eof
            if out:
                yield out
            if pending:
                break
            data, decompressor = decompressor.unused_data, _new_decompressor(new, encoding)
    if pending:
        raise QueryError.of(
            CANNOT_READ_ALL_DATA, f"the {encoding} body ends inside a frame", status=400
        )


def _new_decompressor(new: Callable[[], Any], encoding: str) -> Any:
    try:
        return new()
    except ImportError as exc:
        raise QueryError.of(
            NOT_IMPLEMENTED, f"Content-Encoding {encoding} needs a module: {exc}", status=501
        ) from None


class RequestBody:
    """The body of one request, read at most once; drain() reads what is left over."""

    def __init__(self, rfile: Reader, headers: Headers, limit: int = 1 << 62) -> None:
        """limit bounds the body both as sent and decompressed (a small zstd body can expand)."""
        self._raw = _bounded(_raw_body(rfile, headers), limit)
        self.limit = limit
        self.encoding = headers.get("content-encoding", "")
        self.content_type = headers.get("content-type", "")

    def chunks(self) -> Iterator[bytes]:
        return _bounded(_decoded(self._raw, self.encoding), self.limit)

    def read_all(self) -> bytes:
        return b"".join(self.chunks())

    def drain(self) -> None:
        """Read the rest, so that the connection's next request starts where it should."""
        for _ in self._raw:
            pass


# --- statements -------------------------------------------------------------------------


@dataclass(frozen=True)
class DataInsert:
    """`INSERT ... FORMAT fmt` with the data after it: `statement` is the part before FORMAT."""

    statement: str
    format: str
    head: bytes  # the first data bytes, read along with the statement
    rest: Iterator[bytes]


def split_statement(prefix: bytes, chunks: Iterator[bytes]) -> DataInsert | bytes:
    """The statement in prefix + chunks: a DataInsert, or the whole SQL text.

    Only as much is read as it takes to find an INSERT's data, which then streams on.
    """
    buffer = bytearray(prefix)
    eof = False
    while True:
        decision = _classify(buffer, eof)
        if isinstance(decision, re.Match):
            statement = bytes(buffer[decision.start("statement") : decision.end("statement")])
            return DataInsert(
                statement=statement.decode("utf-8", errors="replace").strip(),
                format=decision.group("format"),
                head=bytes(buffer[decision.end() :]),
                rest=chunks,
            )
        if decision == "sql":
            for chunk in chunks:
                buffer += chunk
            return bytes(buffer)
        more = next(chunks, None)
        if more is None:
            eof = True
        else:
            buffer += more


def _classify(buffer: bytearray, eof: bool) -> re.Match[str] | str:
    """A match of the data head, "sql" for any other statement, or "more" to read on."""
    text = bytes(buffer[:INSERT_HEAD_LIMIT]).decode("latin-1")  # one char per byte: same offsets
    first = _FIRST_WORD.match(text)
    if first is None or (not first.group("after") and not eof):
        return "sql" if eof or len(buffer) > INSERT_HEAD_LIMIT else "more"
    if first.group("word").upper() != "INSERT":
        return "sql"
    head = _INSERT_DATA_HEAD.match(text)
    if head is not None and (head.end() < len(text) or eof):
        inline = _INLINE_DATA_WORD.search(_QUOTED.sub(" ", head.group("statement")))
        return "sql" if inline else head
    return "sql" if eof or len(buffer) > INSERT_HEAD_LIMIT else "more"


def first_word(sql: str) -> str:
    match = _FIRST_WORD.match(sql)
    return match.group("word").upper() if match else ""


def _quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _quote_value(value: str) -> str:
    """A setting value as a string literal: the engine converts it to the setting's type."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- the engine and its sessions --------------------------------------------------------


@dataclass
class Session:
    """One engine connection: its own current database and settings, one statement at a time."""

    connection: Any  # chdb.state.sqlitelike.Connection
    timeout_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    database: str | None = "default"  # None: unknown after a USE statement
    settings: dict[str, str] = field(default_factory=dict)  # SET from request parameters
    saved: dict[str, str | None] = field(default_factory=dict)  # what they were before
    reader: Session | None = None  # the read-only connection that runs the session's GETs

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        with contextlib.suppress(Exception):
            self.connection.close()


@dataclass(frozen=True)
class Answer:
    body: bytes
    format: str | None  # X-ClickHouse-Format: set when the statement has a result set
    summary: dict[str, str]


@dataclass(frozen=True)
class Request:
    """What one HTTP request asks for, transport details removed."""

    params: Mapping[str, str]
    prefix: bytes  # the `query` parameter, and the newline ClickHouse puts after it
    chunks: Iterator[bytes]
    default_format: str
    database: str | None


class WarmEngine:
    """The chdb engine of this process: the one directory it owns, and a session per client.

    A main connection stays open for the process's life: the engine starts with the first
    connection and stops with the last, and per-session connections come and go.
    """

    def __init__(self, path: Path, options: GatewayOptions | None = None) -> None:
        self.options = options or GatewayOptions()
        self.path = path.resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        holder = engine_holder(self.path)
        if holder is not None:
            who = f"pid {holder}" if holder > 0 else "another process"
            raise ServiceError(
                f"ClickHouse engine directory {self.path}: {ENGINE_IN_USE}; {who} holds it. "
                "Stop that process, or give the gateway another --path"
            )
        try:
            self._main = _connect(self.path)
            row = self._main.query("SELECT version(), timezone()", "TabSeparated").bytes()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ServiceError(
                f"cannot open the ClickHouse engine in {self.path}: {first}"
            ) from None
        self.version, self.timezone = row.decode().strip().split("\t")
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self, timeout_s: float, *, readonly: bool = False) -> Session:
        try:
            return Session(connection=_connect(self.path, readonly=readonly), timeout_s=timeout_s)
        except Exception as exc:
            raise engine_error(exc) from None

    @contextlib.contextmanager
    def session(
        self, session_id: str, *, timeout_s: float, check: bool, readonly: bool = False
    ) -> Iterator[Session]:
        """The session's connection, held for one statement; a fresh one without session_id.

        As in ClickHouse, a session busy with another request is an error, not a wait.
        readonly (a GET) gives the session's read-only connection, in the same database.
        """
        key = session_id or f"\0{uuid.uuid4()}"  # no session: a connection for this request
        with self._lock:
            if self._closed:
                raise QueryError.of(ABORTED, "the warm gateway is shutting down", status=503)
            session = self._sessions.get(key)
            if session is None:
                if check and session_id:
                    raise QueryError.of(SESSION_NOT_FOUND, f"Session {session_id} not found")
                if len(self._sessions) >= self.options.max_sessions:
                    raise QueryError.of(
                        TOO_MANY_SIMULTANEOUS_QUERIES,
                        f"too many sessions: {self.options.max_sessions} are open "
                        "(services.warm_gateway.max_sessions); close one or wait for it to "
                        "expire",
                        status=503,
                    )
                fresh = readonly and not session_id  # a GET without a session: read-only alone
                session = self._sessions[key] = self._connect(timeout_s, readonly=fresh)
            if not session.lock.acquire(blocking=False):
                raise QueryError.of(
                    SESSION_IS_LOCKED, f"Session {session_id} is locked by a concurrent client"
                )
        try:
            session.timeout_s = timeout_s
            yield self._reader(session) if readonly and session_id else session
        finally:
            session.last_used = time.monotonic()
            if not session_id:
                with self._lock:
                    self._sessions.pop(key, None)
                session.close()
            session.lock.release()

    def _reader(self, session: Session) -> Session:
        """The session's read-only twin, created on its first GET, in the session's database."""
        if session.database is None:  # after USE: ask the session where it is
            name = _run(session, "SELECT currentDatabase()", "TabSeparatedRaw").bytes()
            session.database = name.decode().rstrip("\n")
        if session.reader is None:
            session.reader = self._connect(session.timeout_s, readonly=True)
        self._use_database(session.reader, session.database)
        return session.reader

    def expire_sessions(self) -> int:
        """Close the sessions idle for longer than their timeout; how many were closed."""
        now = time.monotonic()
        expired: list[Session] = []
        with self._lock:
            for key, session in list(self._sessions.items()):
                idle = now - session.last_used > session.timeout_s
                if idle and session.lock.acquire(blocking=False):
                    del self._sessions[key]
                    expired.append(session)
        for session in expired:
            session.close()
            session.lock.release()
        return len(expired)

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Close every session (waiting for running statements), then the engine itself."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
        deadline = time.monotonic() + wait_s
        for session in sessions:
            if session.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                session.close()
                session.lock.release()
            else:
                log.warning("closing the engine while a statement still runs")
        with contextlib.suppress(Exception):
            self._main.close()

    def execute(self, request: Request, session: Session) -> Answer:
        """Run the request's statement on the session: a streamed insert, or SQL with a result."""
        self._use_database(session, request.database)
        _apply_settings(session, request.params)
        started = time.monotonic()
        statement = split_statement(request.prefix, request.chunks)
        params = {k[6:]: v for k, v in request.params.items() if k.startswith("param_")}
        if isinstance(statement, DataInsert):
            head = f"{statement.statement} FORMAT {statement.format}".encode()
            self._check(session, head, params)
            return _insert(session, statement, started)
        self._check(session, statement, params)
        return self._query(session, statement, request, started)

    def _check(self, session: Session, sql: bytes, params: Mapping[str, str]) -> None:
        """Refuse, as ClickHouse words it, what reaches outside the engine and the cold tier."""

        def query(text: bytes, query_params: Mapping[str, str]) -> bytes:
            raw: bytes = _run(session, text, "TabSeparatedRaw", query_params).bytes()
            return raw.removesuffix(b"\n")

        try:
            check_statement(query, sql, params, self.options.policy)
        except Refused as refused:
            raise QueryError.of(refused.error, refused.message) from None

    def _use_database(self, session: Session, database: str | None) -> None:
        if database and database != session.database:
            _run(session, f"USE {_quote_identifier(database)}", "TabSeparated")
            session.database = database

    def _query(self, session: Session, sql: bytes, request: Request, started: float) -> Answer:
        text = sql.decode("utf-8", errors="surrogateescape")
        word = first_word(text)
        explicit = _OUTPUT_FORMAT.search(text) if word != "INSERT" else None
        fmt = explicit.group("format") if explicit else request.default_format
        if fmt.lower() in PYTHON_ONLY_FORMATS:
            raise QueryError.of(UNKNOWN_FORMAT, f"Unknown output format {fmt}", status=400)
        # Without FORMAT, ask for the names too: only a statement with a result set has them,
        # which tells whether to send X-ClickHouse-Format (clickhouse-connect's command() reads it).
        with_names = None if explicit else TSV_WITH_NAMES.get(fmt.lower())
        params = {k[6:]: v for k, v in request.params.items() if k.startswith("param_")}
        try:
            query: str | bytes = sql.decode("utf-8")
        except UnicodeDecodeError:
            query = sql  # binary literals: the engine takes the bytes as they are
        result = _run(session, query, with_names or fmt, params)
        if word == "USE":
            session.database = None
        body = result.bytes()
        if with_names is not None:
            newline = body.find(b"\n")
            has_result = bool(body)
            body = body[newline + 1 :] if newline >= 0 else b""
        else:
            has_result = explicit is not None or bool(body)
        return Answer(
            body=body,
            format=fmt if has_result else None,
            summary=_summary(result, started),
        )


def _run(
    session: Session, sql: str | bytes, fmt: str, params: Mapping[str, str] | None = None
) -> Any:
    try:
        return session.connection.query(sql, fmt, params=dict(params or {}))
    except Exception as exc:
        raise engine_error(exc) from None


def _apply_settings(session: Session, params: Mapping[str, str]) -> None:
    """Make the session's settings those of this request's parameters.

    ClickHouse applies URL settings to one request only. Here they are SET on the session and
    stay until a request comes without them, which then SETs back the value from before.
    Nothing is run when a client sends the same settings each time, as clickhouse-connect does.
    """
    wanted = {
        name: value
        for name, value in params.items()
        if name not in HTTP_PARAMS and not name.startswith("param_") and name != "_"
    }
    for name in wanted:
        if not _SETTING_NAME.match(name):
            raise QueryError.of(
                BAD_ARGUMENTS, f"setting name {name!r} is not an identifier", status=400
            )
        if pinned_setting(name):
            raise QueryError.of(
                SETTING_CONSTRAINT_VIOLATION, f"Setting {name} should not be changed"
            )
    new = [name for name in wanted if name not in session.settings]
    if new:
        session.saved.update(_session_values(session, new))
    for name, value in wanted.items():
        if session.settings.get(name) != value:
            _run(session, f"SET {name} = {_quote_value(value)}", "TabSeparated")
            session.settings[name] = value
    for name in [name for name in session.settings if name not in wanted]:
        _run(session, f"SET {name} = {session.saved.pop(name, None) or 'DEFAULT'}", "TabSeparated")
        del session.settings[name]


def _session_values(session: Session, names: list[str]) -> dict[str, str | None]:
    """Each setting's value in the session now, as a literal to SET back; None for the default."""
    result = _run(
        session,
        "SELECT name, value, changed FROM system.settings WHERE has({names:Array(String)}, name)",
        "JSONEachRow",  # byte-faithful: TabSeparated would escape values such as 'auto(4)'
        {"names": "[" + ", ".join(_quote_value(name) for name in names) + "]"},
    )
    values: dict[str, str | None] = dict.fromkeys(names)
    for line in result.bytes().splitlines():
        row = json.loads(line)
        if row["changed"]:
            value = str(row["value"])
            quoted = len(value) >= 2 and value[0] == value[-1] == "'"
            values[row["name"]] = value if quoted else _quote_value(value)
    return values


def _insert(session: Session, insert: DataInsert, started: float) -> Answer:
    """Stream the data into the engine as it arrives; nothing is written unless all of it is."""
    if insert.format.lower() in PYTHON_ONLY_FORMATS:
        raise QueryError.of(UNKNOWN_FORMAT, f"Unknown input format {insert.format}", status=400)
    try:
        inserter = session.connection.send_insert(insert.statement, insert.format)
    except Exception as exc:
        raise engine_error(exc) from None
    try:
        if insert.head:
            inserter.append(insert.head)
        for chunk in insert.rest:
            inserter.append(chunk)
        result = inserter.finish()
    except QueryError:
        with contextlib.suppress(Exception):
            inserter.cancel()
        raise
    except Exception as exc:
        with contextlib.suppress(Exception):
            inserter.cancel()
        raise engine_error(exc) from None
    return Answer(
        body=b"",
        format=None,
        summary=_summary_of(
            written_rows=result.rows_written, written_bytes=result.bytes_written, started=started
        ),
    )


def _summary(result: Any, started: float) -> dict[str, str]:
    """X-ClickHouse-Summary from chdb's statistics (rows_read() counts result rows)."""
    return _summary_of(
        read_rows=result.storage_rows_read(),
        read_bytes=result.storage_bytes_read(),
        written_rows=result.rows_written(),
        written_bytes=result.bytes_written(),
        result_rows=result.rows_read(),
        result_bytes=result.bytes_read(),
        started=started,
    )


def _summary_of(*, started: float, **counts: int) -> dict[str, str]:
    names = ("read_rows", "read_bytes", "written_rows", "written_bytes")
    summary = {name: str(int(counts.get(name, 0))) for name in names}
    summary["total_rows_to_read"] = summary["read_rows"]
    summary["result_rows"] = str(int(counts.get("result_rows", 0)))
    summary["result_bytes"] = str(int(counts.get("result_bytes", 0)))
    summary["elapsed_ns"] = str(int((time.monotonic() - started) * 1e9))
    return summary


# --- HTTP -------------------------------------------------------------------------------


def _content_type(fmt: str | None) -> str:
    name = (fmt or "").lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    if name.startswith("pretty") or not name:
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def parse_request(
    params: dict[str, str],
    headers: Headers,
    body: RequestBody,
    max_session_timeout_s: float = GatewayOptions.max_session_timeout_s,
) -> tuple[Request, str, float, bool]:
    """The request's statement and settings, with its session id, timeout and check flag."""
    for name in ("compress", "decompress"):
        if params.get(name, "0") not in ("", "0", "false"):
            raise QueryError.of(
                NOT_IMPLEMENTED,
                f"{name}=1 (ClickHouse's internal block compression) is not supported; "
                "use Content-Encoding, or compress=False on the client",
                status=501,
            )
    chunks: Iterator[bytes]
    if body.content_type.lower().startswith("multipart/form-data"):
        params.update(_form_fields(body))  # the query and its parameters, too long for a URL
        chunks = iter(())
    else:
        chunks = body.chunks()
    query = params.get("query", "")
    try:
        default = min(DEFAULT_SESSION_TIMEOUT_S, max_session_timeout_s)
        timeout_s = float(params.get("session_timeout") or default)
    except ValueError:
        raise QueryError.of(
            BAD_ARGUMENTS,
            f"session_timeout {params['session_timeout']!r} is not a number of seconds",
            status=400,
        ) from None
    if not 0 < timeout_s <= max_session_timeout_s:
        raise QueryError.of(
            BAD_ARGUMENTS,
            f"session_timeout {timeout_s:g} is out of range: expected 0 < seconds <= "
            f"{max_session_timeout_s:g} (services.warm_gateway.max_session_timeout_s)",
            status=400,
        )
    request = Request(
        params=params,
        prefix=(query + "\n").encode() if query else b"",
        chunks=chunks,
        default_format=params.get("default_format")
        or headers.get("x-clickhouse-format")
        or "TabSeparated",
        database=params.get("database") or headers.get("x-clickhouse-database") or None,
    )
    check = params.get("session_check", "0") not in ("", "0", "false")
    return request, params.get("session_id", ""), timeout_s, check


def _form_fields(body: RequestBody) -> dict[str, str]:
    """The text fields of a multipart/form-data body; a file field is external data."""
    raw = body.read_all()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + body.content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    fields: dict[str, str] = {}
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise QueryError.of(
                NOT_IMPLEMENTED, "external data (file fields) is not supported", status=501
            )
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode() if isinstance(payload, bytes) else ""
    return fields


class GatewayServer(http.server.ThreadingHTTPServer):
    """One thread per connection; the engine is shared."""

    daemon_threads = True
    request_queue_size = 64  # the default 5 drops connections when many clients start at once

    def __init__(self, address: tuple[str, int], engine: WarmEngine) -> None:
        self.engine = engine
        self.display_name = socket.gethostname()
        self.loopback_only = is_loopback(address[0])
        super().__init__(address, GatewayHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("connection from %s ended with an error", client_address, exc_info=True)


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clickhouse-connect reuses its connections
    server_version = "marketstream-warm-gateway"
    timeout = IDLE_CONNECTION_TIMEOUT_S
    disable_nagle_algorithm = True  # else a small answer waits for the client's delayed ACK
    server: GatewayServer

    def do_GET(self) -> None:
        self._serve(readonly=True)  # as ClickHouse: GET runs with readonly=2

    def do_POST(self) -> None:
        self._serve(readonly=False)

    def handle_expect_100(self) -> bool:
        """Refuse a body too large before the client sends it."""
        if self._refused_before_body():
            return False
        return super().handle_expect_100()

    def _refused_before_body(self) -> bool:
        """Answer 403 for a foreign Host, 413 for a Content-Length over the limit: True if so."""
        if self.server.loopback_only and not loopback_host(self.headers.get("Host")):
            self.close_connection = True
            text = (
                f"Host {self.headers.get('Host')!r} is not allowed: a gateway bound to loopback "
                "answers localhost, 127.0.0.1 and [::1] only\n"
            )
            self._send(403, text.encode(), {"Content-Type": "text/plain; charset=UTF-8"})
            return True
        limit = self.server.engine.options.max_body_bytes
        try:
            length = content_length({"content-length": self.headers.get("Content-Length", "")})
        except QueryError as exc:
            self._fail(exc, None, str(uuid.uuid4()), self.server.engine.timezone)
            return True
        if length > limit:
            self._fail(too_large(limit), None, str(uuid.uuid4()), self.server.engine.timezone)
            return True
        return False

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged one by one; failures are, in _fail()."""

    def _serve(self, *, readonly: bool) -> None:
        if self._refused_before_body():
            return
        url = urllib.parse.urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        engine = self.server.engine
        body = RequestBody(self.rfile, headers, engine.options.max_body_bytes)
        query_id = str(uuid.uuid4())
        if url.path in ("/ping", "/ping/"):
            self._drain_and_fail_on_error(body)
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        if url.path not in ("", "/"):
            self._drain_and_fail_on_error(body)
            text = f"There is no handle {url.path}: use / or /ping\n"
            self._send(404, text.encode(), {"Content-Type": "text/plain; charset=UTF-8"})
            return
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or query_id
        timezone = params.get("session_timezone") or self.server.engine.timezone
        try:
            request, session_id, timeout_s, check = parse_request(
                params, headers, body, engine.options.max_session_timeout_s
            )
            with engine.session(
                session_id, timeout_s=timeout_s, check=check, readonly=readonly
            ) as session:
                answer = engine.execute(request, session)
        except QueryError as exc:
            self._fail(exc, body, query_id, timezone)
            return
        except Exception as exc:
            log.exception("query %s failed inside the gateway", query_id)
            self._fail(
                QueryError.of(STD_EXCEPTION, f"{type(exc).__name__}: {exc}"),
                body,
                query_id,
                timezone,
            )
            return
        reply = {
            "Content-Type": _content_type(answer.format),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": timezone,
            "X-ClickHouse-Summary": json.dumps(answer.summary, separators=(",", ":")),
        }
        if answer.format is not None:
            reply["X-ClickHouse-Format"] = answer.format
        self._send(200, answer.body, reply)

    def _drain_and_fail_on_error(self, body: RequestBody) -> None:
        try:
            body.drain()
        except QueryError:
            self.close_connection = True

    def _fail(
        self, exc: QueryError, body: RequestBody | None, query_id: str, timezone: str
    ) -> None:
        """Answer like ClickHouse; read the rest of the body first, or the client's send fails.

        A body that is not read (none, or one refused for its size) ends the connection.
        """
        if body is not None and not isinstance(exc, BodyError):
            self._drain_and_fail_on_error(body)
        else:
            self.close_connection = True
        log.info("query %s: %s", query_id, exc.text.splitlines()[0] if exc.text else exc.code)
        text = (
            exc.text
            if "(version " in exc.text
            else f"{exc.text} (version {self.server.engine.version})"
        )
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": timezone,
            "X-ClickHouse-Exception-Code": str(exc.code),
        }
        self._send(exc.status, (text + "\n").encode(), headers)

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("X-ClickHouse-Server-Display-Name", self.server.display_name)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        else:
            self.send_header("Keep-Alive", f"timeout={int(IDLE_CONNECTION_TIMEOUT_S)}")
        self.end_headers()
        self.wfile.write(body)


def is_loopback(host: str) -> bool:
    """Whether a listen address is a loopback one (the Host check applies then)."""
    return host in LOOPBACK_NAMES or host.startswith("127.")


def loopback_host(header: str | None) -> bool:
    """Whether a Host header names this machine: localhost, 127.0.0.1 or [::1], any port.

    A missing header (HTTP/1.0) is accepted: a browser always sends one.
    """
    if header is None:
        return True
    host = header.strip().lower()
    if host.startswith("["):
        name = host[: host.find("]") + 1] if "]" in host else host
        port = host[len(name) :]
    else:
        name, _, rest = host.partition(":")
        port = f":{rest}" if rest else ""
    port_ok = not port or (port.startswith(":") and port[1:].isdigit())
    return port_ok and name in LOOPBACK_NAMES


# --- the process ------------------------------------------------------------------------


def serve(
    path: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    options: GatewayOptions | None = None,
) -> None:
    """Serve the engine directory at path until SIGTERM or SIGINT, then close it cleanly.

    Raises ServiceError when the directory is held by another process or the port is taken.
    """
    engine = WarmEngine(path, options)
    try:
        server = GatewayServer((host, port), engine)
    except OSError as exc:
        engine.close()
        raise ServiceError(
            f"warm gateway cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    with thread_stop_event() as stop:
        http_thread = threading.Thread(
            target=server.serve_forever, name="warm-gateway-http", daemon=True
        )
        http_thread.start()
        if host not in (DEFAULT_HOST, "localhost", "::1"):
            log.warning(
                "listening on %s without authentication: anyone who reaches it can write", host
            )
        print(
            f"warm gateway: ClickHouse {engine.version} engine in {engine.path} "
            f"at http://{host}:{server.server_address[1]}",
            flush=True,
        )
        try:
            while not stop.wait(REAP_INTERVAL_S) and http_thread.is_alive():
                engine.expire_sessions()
        finally:
            server.shutdown()
            server.server_close()
            engine.close()
            print("warm gateway: stopped, engine closed", flush=True)
