"""An export's input, one UTC day of one instrument and record type at a time: each day from
the hottest tier holding it (`TieredQueries`), so a year of trades never sits in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketstream.export.candles import merge_bars
from marketstream.schemas.arrow import from_arrow
from marketstream.schemas.columns import CANDLES, SPEC_BY_TABLE
from marketstream.schemas.records import Candle
from marketstream.tiers.days import NS_PER_DAY, day_start_ns, days_between

if TYPE_CHECKING:
    from marketstream.export.request import ExportRequest
    from marketstream.query.all_tiers import TieredQueries


@dataclass(frozen=True, slots=True)
class DayPiece:
    """One instrument's rows of one record type (a table name) within one UTC day, in the
    tiers' order (time first), in our Arrow layout; candles carry a `source` column."""

    exchange: str
    symbol: str
    type: str
    day: date
    table: pa.Table


def request_days(request: ExportRequest) -> list[tuple[date, int, int]]:
    """(day, low, high): the part of each UTC day inside the request's range."""
    return [
        (
            day,
            max(request.start_ns, day_start_ns(day)),
            min(request.end_ns, day_start_ns(day) + NS_PER_DAY),
        )
        for day in days_between(request.start_ns, request.end_ns)
    ]


def read_day(  # noqa: PLR0917 - one piece of the request
    tiered: TieredQueries,
    request: ExportRequest,
    symbol: str,
    kind: str,
    day: date,
    low: int,
    high: int,
) -> DayPiece:
    """The rows of [low, high) (within `day`) of one symbol and type."""
    if kind == "candles":
        table = read_bars(tiered, request.exchange, symbol, request.interval, low, high)
    else:
        spec = SPEC_BY_TABLE[kind]
        table = tiered.range_table(spec, request.exchange, symbol, low, high, limit=None)
    return DayPiece(request.exchange, symbol, kind, day, table)


def read_bars(  # noqa: PLR0917 - one piece of the request
    tiered: TieredQueries, exchange: str, symbol: str, interval: str, low: int, high: int
) -> pa.Table:
    """Bars opening in [low, high): the exchange's own at `interval`, filled in from trades."""
    stored = tiered.range_table(CANDLES, exchange, symbol, low, high, limit=None)
    stored = stored.filter(pc.equal(stored.column("interval"), pa.scalar(interval)))
    exchange_bars = [bar for bar in from_arrow(CANDLES, stored) if isinstance(bar, Candle)]
    trade_bars = tiered.ohlcv(exchange, symbol, interval, low, high, source="trades")
    return merge_bars(exchange_bars, trade_bars)
