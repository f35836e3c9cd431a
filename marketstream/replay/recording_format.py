"""The recording format: one received frame per JSON line, shared by recorder and replay.

A line is `{"recv_ns": int, "exchange": str, "url": str, "frame": str}`. Lines whose `url`
is an http(s) URL hold a REST response (a book snapshot, a polled price answer): `frame` is
its body, and two optional fields say how it was answered: `status` (written only when not
200) and `headers` (written only when there are some). Older lines without them read as a
200 with no headers. A writer of REST answers must pass the headers through
`without_secrets`: a recording is shared and committed, and must never hold a key or cookie.
Reading is strict (a bad line stops with its file and line number) because a recording
that replays differently from what was received would make every test built on it lie.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Final

import msgspec
import orjson

from marketstream.closing import Closing
from marketstream.errors import MarketStreamError
from marketstream.secret_names import names_a_secret

RECORDINGS_ENV = "MARKETSTREAM_RECORDINGS"
# The real captures shipped in the repository (tests/data/recordings, beside the package in a
# checkout or an editable install).
SHIPPED_RECORDINGS = Path(__file__).resolve().parents[2] / "tests" / "data" / "recordings"
EXPECTED_LINE = "expected a JSON object with recv_ns, exchange, url, frame"
REST_SCHEMES = ("http://", "https://")
_JSON_KINDS: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


class RecordedFrame(msgspec.Struct, frozen=True, gc=False):
    """One received frame (or REST body) and where and when it arrived.

    A Struct: a recording's lines decode straight into it, in C (`parse_recorded_line`)."""

    # int64 here; a larger one (orjson reads up to 2**64 - 1) goes the slow way, as before
    recv_ns: Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    exchange: str
    url: str
    frame: str
    # How a REST answer came back; a WebSocket frame keeps the defaults.
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] = 200
    headers: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def is_rest(self) -> bool:
        """A REST response recorded alongside the feed, not a WebSocket frame."""
        return self.url.startswith(REST_SCHEMES)

    def to_json_line(self) -> bytes:
        """The line, with `status` and `headers` only when not the defaults (so that older
        readers and the shipped recordings keep their four-field lines)."""
        fields: dict[str, object] = {
            "recv_ns": self.recv_ns,
            "exchange": self.exchange,
            "url": self.url,
            "frame": self.frame,
        }
        if self.status != 200:
            fields["status"] = self.status
        if self.headers:
            fields["headers"] = self.headers
        return orjson.dumps(fields) + b"\n"


def without_secrets(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` without any that may carry a credential, names compared case-insensitively:
    what a recorder keeps of a REST answer's headers (`x-ratelimit-*`, `retry-after`,
    `content-type` stay). Errs on the side of dropping: a lost header only makes a replay
    less faithful, a kept key leaks it."""
    return {name: value for name, value in headers.items() if not names_a_secret(name)}


_LINE: Final = msgspec.json.Decoder(RecordedFrame)


def parse_recorded_line(line: bytes | str, path: Path | str, number: int) -> RecordedFrame:
    """One line -> RecordedFrame; MarketStreamError names the file, the line and why.

    A good line decodes in one typed pass; any other is read again the slow way, which
    names what is wrong (the "file line N" label is built only then: it cost a recording's
    reader about 6%)."""
    try:
        return _LINE.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _checked_line(line, f"{path} line {number}")


def _checked_line(line: bytes | str, where: str) -> RecordedFrame:
    try:
        value: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise MarketStreamError(f"{where}: {EXPECTED_LINE} (not valid JSON)") from None
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        raise MarketStreamError(f"{where}: {EXPECTED_LINE} (got a JSON {kind})")
    recv_ns = value.get("recv_ns")
    if type(recv_ns) is not int:  # bool is an int subclass; a timestamp is never true/false
        raise MarketStreamError(f"{where}: {EXPECTED_LINE} (recv_ns missing or not an integer)")
    for key in ("exchange", "url", "frame"):
        if not isinstance(value.get(key), str):
            raise MarketStreamError(f"{where}: {EXPECTED_LINE} ({key} missing or not a string)")
    status = value.get("status", 200)
    if type(status) is not int or not 100 <= status <= 599:
        raise MarketStreamError(
            f"{where}: optional status must be an integer 100-599, got {status!r}"
        )
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise MarketStreamError(f"{where}: optional headers must be an object of string values")
    return RecordedFrame(
        recv_ns, value["exchange"], value["url"], value["frame"], status, dict(headers)
    )


def read_recording(path: Path | str) -> Iterator[RecordedFrame]:
    """The frames of a recording in file order; blank lines are ignored.

    Lazy, so that a long capture replays without being held in memory. Errors (unreadable
    file, bad line) are MarketStreamError with one line naming the file.
    """
    for _, frame in read_recording_lines(path):
        yield frame


def read_recording_lines(path: Path | str) -> Iterator[tuple[int, RecordedFrame]]:
    """Like `read_recording`, with each frame's line number for messages about it."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed by the `with` below; open errors named
    except OSError as exc:
        raise MarketStreamError(f"cannot read recording {path}: {_reason(exc)}") from None
    with file:
        number = 0
        try:
            for number, line in enumerate(file, start=1):
                if not line.isspace():  # strip() would copy every line
                    yield number, parse_recorded_line(line, path, number)
        except OSError as exc:
            raise MarketStreamError(
                f"cannot read recording {path} after line {number}: {_reason(exc)}"
            ) from None


class RecordingWriter(Closing):
    """Appends frames to a recording; a kill loses at most the last `flush_interval_s`.

    Lines are buffered in memory and written whole, in one unbuffered write per flush, so a
    killed recorder never leaves half a line. A flush happens when a write finds the oldest
    buffered line older than the interval, when the buffer grows past `max_buffer_bytes`,
    and whenever the owner calls `flush_if_due()` (the recorder does so on a timer, so that
    a quiet feed is flushed too).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        flush_interval_s: float = 1.0,
        max_buffer_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._flush_interval_s = flush_interval_s
        self._max_buffer_bytes = max_buffer_bytes
        self._clock = clock
        self._buffer: list[bytes] = []
        self._buffered_bytes = 0
        self._oldest: float | None = None
        self.frames_written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: BinaryIO = open(self.path, "ab", buffering=0)  # noqa: SIM115 - see close()
        except OSError as exc:
            raise MarketStreamError(f"cannot write recording {self.path}: {_reason(exc)}") from None

    def write(self, frame: RecordedFrame) -> None:
        line = frame.to_json_line()
        if self._oldest is None:
            self._oldest = self._clock()
        self._buffer.append(line)
        self._buffered_bytes += len(line)
        self.frames_written += 1
        if self._buffered_bytes >= self._max_buffer_bytes:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        if self._oldest is not None and self._clock() - self._oldest >= self._flush_interval_s:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = memoryview(b"".join(self._buffer))
        self._buffer.clear()
        self._buffered_bytes = 0
        self._oldest = None
        try:
            while data:
                written = self._file.write(data)
                data = data[written:]
        except OSError as exc:
            raise MarketStreamError(f"cannot write recording {self.path}: {_reason(exc)}") from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._file.close()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def default_recordings(environ: Mapping[str, str] | None = None) -> Path:
    """`$MARKETSTREAM_RECORDINGS`, else the recordings shipped in the repository."""
    env = os.environ if environ is None else environ
    return Path(env.get(RECORDINGS_ENV) or SHIPPED_RECORDINGS)
