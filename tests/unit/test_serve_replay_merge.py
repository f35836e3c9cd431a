"""`/v1/replay`'s merge: lazy pages that never split a timestamp, time order with a stable
tiebreak, the quality report's minute gaps, and pacing arithmetic."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketstream.quality.gaps import MINUTE_NS, minute_coverage, minute_floor
from marketstream.schemas.records import Record, Trade
from marketstream.serve.replay_merge import (
    Gap,
    Merged,
    MinuteGaps,
    Pacer,
    SourceKey,
    merge,
    paged,
)

T0 = 1_700_000_000 * 10**9


def trade(exchange: str, ts: int, trade_id: str, symbol: str = "BTC-USDT") -> Trade:
    return Trade(exchange, symbol, ts, ts, trade_id, 100.0, 1.0, "buy")


class Table:
    """A tier read: rows with start <= ts, the first `limit`; counts the reads and the most
    rows handed over by one."""

    def __init__(self, rows: Sequence[Record]) -> None:
        self.rows = sorted(rows, key=lambda r: (r.ts, getattr(r, "trade_id", "")))
        self.reads: list[tuple[int, int]] = []

    async def read(self, start_ns: int, limit: int) -> Sequence[Record]:
        self.reads.append((start_ns, limit))
        return [r for r in self.rows if r.ts >= start_ns][:limit]


async def collect(rows: AsyncIterator[Record]) -> list[Record]:
    return [row async for row in rows]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=12), min_size=0, max_size=80),
    st.integers(min_value=1, max_value=7),
)
async def test_pages_neither_skip_nor_repeat_rows_sharing_a_timestamp(
    offsets: list[int], page: int
) -> None:
    rows = [trade("binance", T0 + off, f"{n:04d}") for n, off in enumerate(offsets)]
    table = Table(rows)
    assert await collect(paged(table.read, T0, page)) == table.rows
    assert all(limit >= page for _start, limit in table.reads)


async def test_a_page_is_read_lazily() -> None:
    table = Table([trade("binance", T0 + n, f"{n}") for n in range(100)])
    rows = paged(table.read, T0, 10)
    await anext(rows)
    assert len(table.reads) == 1  # one page in memory, not the range


async def source(rows: Sequence[Record]) -> AsyncIterator[Record]:
    for row in rows:
        yield row


async def test_merge_is_in_time_order_with_a_stable_tiebreak() -> None:
    okx = [trade("okx", T0 + n * 3, f"o{n}") for n in range(20)]
    binance = [trade("binance", T0 + n * 2, f"b{n}") for n in range(30)]
    keys = (SourceKey("trades", "okx", "BTC-USDT"), SourceKey("trades", "binance", "BTC-USDT"))
    events = [e async for e in merge([(keys[0], source(okx)), (keys[1], source(binance))])]
    records = [e.record for e in events if isinstance(e, Merged)]
    # ts first; at equal ts binance (ranked before okx) first; each source in its own order
    assert records == sorted(okx + binance, key=lambda r: (r.ts, r.exchange != "binance"))
    again = [e async for e in merge([(keys[1], source(binance)), (keys[0], source(okx))])]
    assert again == events  # the order given does not matter


async def test_merge_refuses_a_source_out_of_time_order() -> None:
    rows = [trade("okx", T0 + 5, "a"), trade("okx", T0 + 1, "b")]
    key = SourceKey("trades", "okx", "BTC-USDT")
    with pytest.raises(RuntimeError, match="went back in time"):
        _ = [e async for e in merge([(key, source(rows))])]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=30 * MINUTE_NS), max_size=40),
    st.integers(min_value=0, max_value=2 * MINUTE_NS),
    st.integers(min_value=MINUTE_NS, max_value=35 * MINUTE_NS),
)
def test_minute_gaps_are_the_quality_reports_missing_minutes(
    offsets: list[int], start_off: int, length: int
) -> None:
    start, end = T0 + start_off, T0 + start_off + length
    times = sorted(T0 + off for off in offsets if start <= T0 + off < end)
    tracker = MinuteGaps("binance", "BTC-USDT", start, end)
    found = [g for g in (tracker.see(ts) for ts in times) if g is not None]
    last = tracker.finish()
    found += [last] if last is not None else []
    coverage = minute_coverage(
        [minute_floor(ts) for ts in times], start, end, first_trade_ns=times[0] if times else None
    )
    assert [(g.start_ns, g.end_ns) for g in found] == [
        (i.start_ns, i.end_ns) for i in coverage.missing
    ]


async def test_merge_places_a_gap_marker_before_the_first_trade_after_it() -> None:
    start = minute_floor(T0)
    rows = [trade("binance", start + 1, "1"), trade("binance", start + 5 * MINUTE_NS, "2")]
    key = SourceKey("trades", "binance", "BTC-USDT")
    events = [
        e
        async for e in merge(
            [(key, source(rows))],
            gaps_for=lambda k: MinuteGaps(k.exchange, k.symbol, start, start + 6 * MINUTE_NS),
        )
    ]
    assert events == [
        Merged(key, rows[0]),
        Gap("binance", "BTC-USDT", start + MINUTE_NS, start + 5 * MINUTE_NS),
        Merged(key, rows[1]),
    ]


def test_pacer_waits_by_recorded_distance_over_speed() -> None:
    clock = [100.0]
    pacer = Pacer(2.0, lambda: clock[0])
    assert pacer.wait_s(T0) == 0.0
    assert pacer.wait_s(T0 + 4 * 10**9) == 2.0  # 4 s recorded at 2x: 2 s later
    clock[0] = 103.0
    assert pacer.wait_s(T0 + 4 * 10**9) == 0.0  # overdue: no waiting
    fast = Pacer(0, random.random)
    assert fast.wait_s(T0) == fast.wait_s(T0 + 10**12) == 0.0
