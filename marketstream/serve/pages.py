"""Paged reads over every tier with an exact, resumable cursor.

A page is the first `limit` rows of one instrument's range in the tiers' total order
(`order_keys`: time, then the rest of the dedup keys). The cursor says where the next page
starts: the time of the last row returned and how many rows at that time were returned so
far. The next page reads from that time and skips those rows, so nothing is skipped or
repeated however many rows share one timestamp. It is opaque (base64 of JSON) and bound to
its query: one from another query is refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import orjson
import pyarrow as pa

from marketstream.query.hot_queries import INTERVALS
from marketstream.schemas.arrow import arrow_schema, to_arrow
from marketstream.schemas.columns import CANDLES, TableSpec
from marketstream.serve.limits import Refused

if TYPE_CHECKING:
    from marketstream.query.all_tiers import TieredQueries

CURSOR_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """One page's question: a table (or `candles` with an interval), one instrument, a range."""

    table: str
    exchange: str
    symbol: str
    start_ns: int
    end_ns: int
    interval: str | None = None

    def key(self) -> str:
        """What a cursor is bound to: the same query, whatever the page size."""
        text = f"{self.table}|{self.exchange}|{self.symbol}|{self.start_ns}|{self.end_ns}|"
        return hashlib.sha256(f"{text}{self.interval}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Cursor:
    ts: int  # resume at this time...
    seen: int  # ...skipping this many rows at it (already returned)

    def encode(self, request: RangeRequest) -> str:
        body = {"v": CURSOR_VERSION, "q": request.key(), "ts": self.ts, "n": self.seen}
        return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(text: str, request: RangeRequest) -> Cursor:
    """The cursor a previous page of the same query returned; 400 for anything else."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        body = None
    valid = (
        isinstance(body, dict)
        and body.get("v") == CURSOR_VERSION
        and isinstance(body.get("ts"), int)
        and isinstance(body.get("n"), int)
        and body["n"] >= 0
        and request.start_ns <= body["ts"] <= request.end_ns
    )
    if not valid:
        raise Refused(
            f"cursor {text[:40]!r} is not valid: expected the next_cursor of a previous answer",
            status=400,
        )
    if body["q"] != request.key():
        raise Refused(
            "cursor belongs to another query: expected the same type, exchange, symbol, start, "
            "end (and interval) as the answer that returned it",
            status=400,
        )
    return Cursor(body["ts"], body["n"])


def read_page(
    tiered: TieredQueries,
    spec: TableSpec,
    request: RangeRequest,
    limit: int,
    cursor: Cursor | None,
) -> tuple[pa.Table, Cursor | None]:
    """Up to `limit` rows after `cursor` and the cursor of the page after (None: the end).
    Blocking: run it on a worker thread."""
    low, skip = (request.start_ns, 0) if cursor is None else (cursor.ts, cursor.seen)
    if low >= request.end_ns:
        return arrow_schema(spec).empty_table(), None
    # One row more than the page tells whether another page follows.
    table = tiered.range_table(
        spec, request.exchange, request.symbol, low, request.end_ns, limit=skip + limit + 1
    )
    page = table.slice(skip, limit)
    if table.num_rows <= skip + limit or page.num_rows == 0:
        return page, None
    times = table.column(spec.timestamp).slice(0, skip + limit).cast(pa.int64())
    last = times[-1].as_py()
    seen = int((times.to_numpy() == last).sum())  # vectorized: a page may hold 100k rows
    return page, Cursor(last, seen)


def read_candles(
    tiered: TieredQueries, request: RangeRequest, limit: int, cursor: Cursor | None
) -> tuple[pa.Table, Cursor | None]:
    """Candles built from trades, `limit` bar slots at a time: one bar per time, so the cursor
    is the next bar's open. Slots without a trade have no bar: windows are read on until one
    holds a bar or the range ends."""
    assert request.interval is not None
    step = INTERVALS[request.interval]
    low = request.start_ns if cursor is None else cursor.ts
    while low < request.end_ns:
        high = min(request.end_ns, low + limit * step)
        candles = tiered.ohlcv(request.exchange, request.symbol, request.interval, low, high)
        following = None if high >= request.end_ns else Cursor(high, 0)
        if candles or following is None:
            return to_arrow(CANDLES, candles), following
        low = high
    return arrow_schema(CANDLES).empty_table(), None
