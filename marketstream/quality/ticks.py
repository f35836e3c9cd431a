"""Pure tick arithmetic for polled sources: which ticks a range expects, and the runs of
ticks missing from it.

A polled source's tick k is at `k * cadence` ns since the epoch (clock-aligned), and each
stored `prices` row has `ts` == its tick exactly, so completeness is counting multiples of the
cadence. Ranges are half-open: a range [since, until) expects the ticks t with
since <= t < until.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

NS_PER_S: Final = 1_000_000_000


def cadence_ns(cadence_s: float) -> int:
    """A cadence in seconds (`sources.<name>.cadence_s`) as whole nanoseconds."""
    ns = round(cadence_s * NS_PER_S)
    if ns <= 0:
        raise ValueError(f"cadence {cadence_s!r} s is not a positive number of nanoseconds")
    return ns


def tick_ceil(ns: int, cadence: int) -> int:
    """The first tick at or after ns."""
    return -(-ns // cadence) * cadence


@dataclass(frozen=True, slots=True)
class TickSpan:
    """The ticks start, start + cadence, ... before end (start and end are both ticks)."""

    start_ns: int
    end_ns: int
    cadence_ns: int

    @property
    def expected(self) -> int:
        return max(0, (self.end_ns - self.start_ns) // self.cadence_ns)

    def starting_at(self, first_ns: int) -> TickSpan:
        """The same span from a later tick on (a source's first stored tick); never later
        than its end, never earlier than its start."""
        start = min(max(self.start_ns, tick_ceil(first_ns, self.cadence_ns)), self.end_ns)
        return TickSpan(start, max(start, self.end_ns), self.cadence_ns)


def tick_span(
    since_ns: int, until_ns: int, cadence: int, settled_ns: int | None = None
) -> TickSpan:
    """The ticks in [since, until) that are due: at or before `settled_ns` when given (the last
    instant whose tick has had its deadline and the time to be stored)."""
    start = tick_ceil(since_ns, cadence)
    end = until_ns if settled_ns is None else min(until_ns, settled_ns + 1)
    return TickSpan(start, max(start, tick_ceil(end, cadence)), cadence)


@dataclass(frozen=True, slots=True)
class TickRange:
    """Consecutive missed ticks first..last, both included."""

    first_ns: int
    last_ns: int
    cadence_ns: int

    @property
    def ticks(self) -> int:
        return (self.last_ns - self.first_ns) // self.cadence_ns + 1


def missed_ranges(
    span: TickSpan,
    first_ns: int | None,
    last_ns: int | None,
    holes: Iterable[tuple[int, int]],
) -> list[TickRange]:
    """The runs of ticks of `span` with no row, in time order.

    `first_ns`/`last_ns` are the first and last stored tick in the span (None: no row), and
    `holes` the pairs (previous, following) of consecutive stored ticks more than one
    cadence apart, as the hot tier returns them: the ticks strictly between are missing.
    Before the first and after the last stored tick, every tick of the span is missing.
    """
    step = span.cadence_ns
    if span.expected == 0:
        return []
    if first_ns is None or last_ns is None:
        return [TickRange(span.start_ns, span.end_ns - step, step)]
    ranges: list[TickRange] = []
    if first_ns > span.start_ns:
        ranges.append(TickRange(span.start_ns, first_ns - step, step))
    ranges.extend(
        TickRange(previous + step, following - step, step)
        for previous, following in sorted(holes)
        if following - previous > step
    )
    if last_ns + step < span.end_ns:
        ranges.append(TickRange(last_ns + step, span.end_ns - step, step))
    return ranges
