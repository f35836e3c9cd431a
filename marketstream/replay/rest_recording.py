"""A polled source's recording: REST answers only, looked up by request target and time.

A polled source (`schemas.instruments.SOURCES`) has no WebSocket and so no dialect: its
recording is the answers its poller received, each with its status and headers. The file
is checked whole and held in memory (answers of a few requests a second are small); the
replay position is a time in the recording, and each target answers what was recorded for
it last at or before that time.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from marketstream.errors import MarketStreamError
from marketstream.replay.recording_format import read_recording_lines
from marketstream.replay.source import request_target
from marketstream.schemas.instruments import SOURCES

# The loop's step from the last answer back to the first when no target was answered twice
# (nothing to measure a cadence on).
DEFAULT_STEP_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    """One REST answer as received."""

    recv_ns: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Position:
    """Where a replay is: a time in the recording, and how many times it wrapped."""

    recording_ns: int
    loops: int
    ended: bool  # past the end with looping off: nothing is answered any more


@dataclass(frozen=True, slots=True)
class RestRecording:
    """The answers of one polled source's recording, by request target (`request_target`)."""

    path: Path
    exchange: str
    first_ns: int
    last_ns: int
    # One pass of the recording: from the first answer to the last plus one step (the
    # median gap between a target's answers), so the last answer is served as long as the
    # others and a loop does not skip or double it.
    cycle_ns: int
    answers: dict[str, list[RecordedAnswer]]  # each list in recv_ns order
    shown: dict[str, str]  # request target -> its path and query as first recorded

    @property
    def targets(self) -> list[str]:
        """The recorded targets, as written in the recording (for people and logs)."""
        return sorted(self.shown.values())

    def __len__(self) -> int:
        return sum(len(v) for v in self.answers.values())

    def position(self, elapsed_ns: int, *, loop: bool) -> Position:
        """The recording time `elapsed_ns` (replay time, already multiplied by the speed)
        after the start, wrapping at the end of a cycle when `loop`."""
        elapsed_ns = max(0, elapsed_ns)
        loops, offset = divmod(elapsed_ns, self.cycle_ns)
        if not loop:
            return Position(self.first_ns + min(elapsed_ns, self.cycle_ns), 0, loops > 0)
        return Position(self.first_ns + offset, loops, False)

    def answer(self, target: str, recording_ns: int) -> RecordedAnswer | None:
        """The answer recorded for `target` last at or before `recording_ns`, the first
        one before the target was first answered; None for a target never asked."""
        answers = self.answers.get(request_target(target))
        if not answers:
            return None
        index = bisect.bisect_right(answers, recording_ns, key=lambda a: a.recv_ns)
        return answers[max(0, index - 1)]


def is_polled_source(exchange: str, sources: Collection[str] = SOURCES) -> bool:
    return exchange in sources


def recording_exchange(path: Path | str) -> str:
    """The exchange (or source) of a recording's first line; MarketStreamError if it has none."""
    for _, recorded in read_recording_lines(path):
        return recorded.exchange
    raise MarketStreamError(f"{path}: the recording holds no frames")


def scan_rest_recording(path: Path | str, sources: Collection[str] = SOURCES) -> RestRecording:
    """Check and load a polled source's recording; MarketStreamError naming the file (and
    the line) if it is not one: another exchange, a second one, or a WebSocket frame."""
    path = Path(path)
    exchange: str | None = None
    answers: dict[str, list[RecordedAnswer]] = {}
    shown: dict[str, str] = {}
    for number, recorded in read_recording_lines(path):
        where = f"{path} line {number}"
        if exchange is None:
            exchange = recorded.exchange
            if exchange not in sources:
                known = ", ".join(sorted(sources))
                raise MarketStreamError(
                    f"{where}: {exchange!r} is not a polled source (REST-only replay serves "
                    f"{known}); a WebSocket recording needs its exchange's dialect"
                )
        elif recorded.exchange != exchange:
            raise MarketStreamError(
                f"{where}: exchange {recorded.exchange!r} after {exchange!r}; "
                "a recording holds one source"
            )
        if not recorded.is_rest:
            raise MarketStreamError(
                f"{where}: a WebSocket frame ({recorded.url}) in a recording of polled source "
                f"{exchange!r}, which holds REST answers only"
            )
        answer = RecordedAnswer(
            recorded.recv_ns,
            recorded.status,
            tuple(recorded.headers.items()),
            recorded.frame.encode(),
        )
        target = request_target(recorded.url)
        answers.setdefault(target, []).append(answer)
        if target not in shown:
            parts = urlsplit(recorded.url)
            shown[target] = f"{parts.path}?{parts.query}" if parts.query else parts.path

    if exchange is None:
        raise MarketStreamError(f"{path}: the recording holds no answers")
    for listed in answers.values():
        listed.sort(key=lambda a: a.recv_ns)  # stable: answers received together keep order
    first = min(v[0].recv_ns for v in answers.values())
    last = max(v[-1].recv_ns for v in answers.values())
    return RestRecording(path, exchange, first, last, last - first + _step(answers), answers, shown)


def _step(answers: dict[str, list[RecordedAnswer]]) -> int:
    gaps = [
        later.recv_ns - earlier.recv_ns
        for listed in answers.values()
        for earlier, later in itertools.pairwise(listed)
        if later.recv_ns > earlier.recv_ns
    ]
    return int(statistics.median(gaps)) if gaps else DEFAULT_STEP_NS
