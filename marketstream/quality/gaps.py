"""Pure gap arithmetic: minutes without a trade, completeness, and missing trade ids.

Minutes are UTC calendar minutes (epoch multiples of 60 s). Trade ids are the exchange's own
when it numbers trades one by one per instrument; the hot tier returns only where the id
sequence breaks (see `id_gaps`), never every id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from marketstream.venues.registry import sequential_trade_id_venues

NS_PER_S: Final = 1_000_000_000
MINUTE_NS: Final = 60 * NS_PER_S

# Exchanges whose trade ids count up by one per instrument, so a skipped id is a missed trade
# (each venue says so: `Venue.sequential_trade_ids`); other venues' ids skip by design.
SEQUENTIAL_ID_EXCHANGES: Final[tuple[str, ...]] = sequential_trade_id_venues()
# Only short decimal ids are compared: some captures carry 16-hex-digit digests as ids, which
# may happen to be all digits, and no exchange is near 10**15 trades per instrument.
SEQUENTIAL_ID_PATTERN: Final = "^[0-9]{1,15}$"


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open time range [start_ns, end_ns)."""

    start_ns: int
    end_ns: int

    @property
    def minutes(self) -> int:
        return (self.end_ns - self.start_ns) // MINUTE_NS


@dataclass(frozen=True, slots=True)
class IdRange:
    """Missing trade ids first..last, both included."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class MinuteCoverage:
    """Which whole minutes of a range had at least one trade."""

    expected: int  # minutes from the first trade's minute (or the range start) to the end
    with_trades: int
    missing: tuple[Interval, ...]  # merged runs of minutes without a trade

    @property
    def completeness(self) -> float | None:
        """Share of expected minutes with a trade; None when no whole minute was expected."""
        return None if self.expected == 0 else self.with_trades / self.expected

    @property
    def missing_minutes(self) -> int:
        return self.expected - self.with_trades


def minute_floor(ns: int) -> int:
    return ns // MINUTE_NS * MINUTE_NS


def minute_ceil(ns: int) -> int:
    return -(-ns // MINUTE_NS) * MINUTE_NS


def minute_coverage(
    minutes_with_trades: Iterable[int], since_ns: int, until_ns: int, *, first_trade_ns: int | None
) -> MinuteCoverage:
    """Coverage of the whole minutes in [since, until) from the first trade's minute on.

    `minutes_with_trades` are minute opens (ns, any order, duplicates allowed) of the minutes
    holding a trade. The count starts at the minute of `first_trade_ns`, so an instrument
    listed or subscribed mid-range is not blamed for the time before; without any trade it
    starts at the first whole minute of the range. It ends at the last minute that closes by
    `until_ns`: a minute still running is not expected yet, and trailing minutes without a
    trade count as missing (a feed that stopped is the gap that matters most).
    """
    start = minute_ceil(since_ns) if first_trade_ns is None else minute_floor(first_trade_ns)
    end = minute_floor(until_ns)
    if end <= start:
        return MinuteCoverage(0, 0, ())
    present = sorted({m for m in minutes_with_trades if start <= m < end})
    missing: list[Interval] = []
    cursor = start
    for minute in present:
        if minute > cursor:
            missing.append(Interval(cursor, minute))
        cursor = minute + MINUTE_NS
    if cursor < end:
        missing.append(Interval(cursor, end))
    return MinuteCoverage((end - start) // MINUTE_NS, len(present), tuple(missing))


@dataclass(frozen=True, slots=True)
class IdBreak:
    """A trade where the id sequence (in time order) does not go on by one.

    `previous` is the id before it (None for the instrument's first trade in the range) and
    `following` the id after it (None for the last). The hot tier returns only these rows.
    """

    trade_id: int
    previous: int | None
    following: int | None


@dataclass(frozen=True, slots=True)
class IdGaps:
    """Trade ids missing between the lowest and the highest id seen in the range."""

    lowest: int
    highest: int
    missing: tuple[IdRange, ...]

    @property
    def missing_ids(self) -> int:
        return sum(r.count for r in self.missing)


def id_gaps(breaks: Iterable[IdBreak]) -> IdGaps | None:
    """The ids missing from a sequence known only by its breaks; None for no trade at all.

    In time order the ids form runs that go up by one; a run starts at the first trade or at
    a break's id, and ends at a break's `previous` or at the last trade. Which start pairs
    with which end does not matter: an id is present when more runs started at or below it
    than ended below it. So the answer is exact even when trades of the same timestamp come
    back out of id order, or an id repeats, at the cost of a few more breaks.
    """
    starts: list[int] = []
    ends: list[int] = []
    for item in breaks:
        if item.previous is None or item.trade_id != item.previous + 1:
            starts.append(item.trade_id)
            if item.previous is not None:
                ends.append(item.previous)
        if item.following is None:
            ends.append(item.trade_id)
    if not starts:
        return None
    highest = max(ends) if ends else max(starts)  # no end: the breaks were cut short
    return IdGaps(min(starts), highest, tuple(_uncovered(starts, ends)))


def _uncovered(starts: Sequence[int], ends: Sequence[int]) -> list[IdRange]:
    """Ids between min(starts) and max(ends) that no run [start, end] covers: a sweep over
    run starts (+1) and the ids just past run ends (-1), ends first at the same id."""
    events = sorted([(s, 1) for s in starts] + [(e + 1, -1) for e in ends])
    gaps: list[IdRange] = []
    depth = 0
    uncovered_from: int | None = None
    for position, step in events:
        if step == 1 and uncovered_from is not None and position > uncovered_from:
            gaps.append(IdRange(uncovered_from, position - 1))
        depth += step
        uncovered_from = position if depth == 0 else None
    return gaps
