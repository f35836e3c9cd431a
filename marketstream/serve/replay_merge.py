"""`/v1/replay`'s logic, free of the web framework: lazy pages of one instrument's records, a
k-way merge of many in time order, the quality report's minute gaps, and recorded-speed pacing.

- Lazy: each source holds one page (`page` rows) at a time and asks for the next only when the
  merge has used it up; a client that reads slowly stops the reads (the send awaits the client).
- Pages never split a timestamp: a full page keeps its rows before its last timestamp and the
  next page starts at that timestamp, so rows sharing a `ts` across a page boundary are
  neither skipped nor repeated (a page of one timestamp only is read again, twice as large).
- Merge order: `ts`, then the source's rank (sources sorted by table, exchange, symbol), then
  the source's own order (each tier's `order_keys`): the same range replays identically.
- Gaps: the quality report's "minutes without a trade" (`quality.gaps.minute_coverage`) over
  the trades served, so warm and cold days get them too; a marker goes out before the first
  trade after the gap, and gaps up to the range's end go out before `end`.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from marketstream.quality.gaps import MINUTE_NS, minute_ceil, minute_floor
from marketstream.schemas.records import Record

PageReader = Callable[[int, int], Awaitable[Sequence[Record]]]  # (start_ns, limit) -> rows
MAX_PAGE: Final = 1_000_000  # the tiers' row limit per query (hot_queries.MAX_TRADES_LIMIT)


@dataclass(frozen=True, slots=True)
class SourceKey:
    """One replayed instrument and table; its text is the channel `trades:binance:BTC-USDT`."""

    table: str
    exchange: str
    symbol: str

    @property
    def text(self) -> str:
        return f"{self.table}:{self.exchange}:{self.symbol}"


async def paged(read: PageReader, start_ns: int, page: int) -> AsyncIterator[Record]:
    """Every row from `start_ns` on, in the reader's order, one page in memory at a time."""
    cursor, limit = start_ns, page
    while True:
        rows = await read(cursor, limit)
        if len(rows) < limit:
            for row in rows:
                yield row
            return
        last_ts = rows[-1].ts
        done = [row for row in rows if row.ts < last_ts]
        if not done:  # the whole page shares one timestamp: read it again, larger
            if limit >= MAX_PAGE:
                raise RuntimeError(
                    f"more than {MAX_PAGE} rows share the timestamp {last_ts}: cannot page them"
                )
            limit = min(limit * 2, MAX_PAGE)
            continue
        for row in done:
            yield row
        cursor, limit = last_ts, page


@dataclass(frozen=True, slots=True)
class Gap:
    """Whole minutes [start_ns, end_ns) without a trade of one instrument."""

    exchange: str
    symbol: str
    start_ns: int
    end_ns: int

    @property
    def minutes(self) -> int:
        return (self.end_ns - self.start_ns) // MINUTE_NS


class MinuteGaps:
    """`minute_coverage`'s missing minutes of one instrument, found while its trades stream by
    in time order: from the first trade's minute to the last minute closed by the range's end
    (no trade at all: the range's whole minutes)."""

    def __init__(self, exchange: str, symbol: str, start_ns: int, end_ns: int) -> None:
        self.exchange, self.symbol = exchange, symbol
        self.start_ns, self.end_ns = start_ns, end_ns
        self.last_minute: int | None = None

    def see(self, ts: int) -> Gap | None:
        minute = minute_floor(ts)
        previous, self.last_minute = self.last_minute, minute
        if previous is not None and minute > previous + MINUTE_NS:
            return Gap(self.exchange, self.symbol, previous + MINUTE_NS, minute)
        return None

    def finish(self) -> Gap | None:
        start = (
            minute_ceil(self.start_ns) if self.last_minute is None else self.last_minute + MINUTE_NS
        )
        end = minute_floor(self.end_ns)
        return Gap(self.exchange, self.symbol, start, end) if end > start else None


@dataclass(frozen=True, slots=True)
class Merged:
    """One row of the merge, with the source it came from."""

    source: SourceKey
    record: Record


Event = Merged | Gap


async def merge(
    sources: Sequence[tuple[SourceKey, AsyncIterator[Record]]],
    *,
    gaps_for: Callable[[SourceKey], MinuteGaps | None] = lambda _key: None,
) -> AsyncIterator[Event]:
    """The sources' rows in (ts, source rank, source order); a source is asked for its next
    row only after its previous one left. Gap markers for the sources `gaps_for` tracks."""
    ranked = sorted(range(len(sources)), key=lambda i: _rank_key(sources[i][0]))
    trackers = {i: gaps_for(sources[i][0]) for i in ranked}
    heap: list[tuple[int, int, int, Record]] = []
    seen = [0] * len(sources)
    for rank, index in enumerate(ranked):
        first = await anext(sources[index][1], None)
        if first is not None:
            heap.append((first.ts, rank, 0, first))
    heapq.heapify(heap)
    while heap:
        _ts, rank, _order, record = heap[0]
        index = ranked[rank]
        key, rows = sources[index]
        tracker = trackers[index]
        if tracker is not None:
            gap = tracker.see(record.ts)
            if gap is not None:
                yield gap
        yield Merged(key, record)
        seen[index] += 1
        following = await anext(rows, None)
        if following is None:
            heapq.heappop(heap)
        else:
            if following.ts < record.ts:
                raise RuntimeError(
                    f"{key.text} went back in time ({following.ts} after {record.ts}): "
                    "a source must be in time order"
                )
            heapq.heapreplace(heap, (following.ts, rank, seen[index], following))
    for index in ranked:
        tracker = trackers[index]
        last = tracker.finish() if tracker is not None else None
        if last is not None:
            yield last


def _rank_key(key: SourceKey) -> tuple[str, str, str]:
    return (key.table, key.exchange, key.symbol)


class Pacer:
    """When to send a row at `speed` times the recorded pace (0: no waiting). The clock starts
    at the first row; the due time of each row is its distance from the first, divided by
    the speed."""

    def __init__(self, speed: float, now: Callable[[], float]) -> None:
        self.speed, self.now = speed, now
        self.origin: tuple[int, float] | None = None

    def wait_s(self, ts: int) -> float:
        """Seconds to wait before sending a row of time `ts` (0 when it is due)."""
        if self.speed <= 0:
            return 0.0
        if self.origin is None:
            self.origin = (ts, self.now())
            return 0.0
        first_ts, started = self.origin
        due = started + (ts - first_ts) / 1e9 / self.speed
        return max(0.0, due - self.now())
