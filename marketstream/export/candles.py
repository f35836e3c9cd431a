"""Bars for an export: the exchange's own closed bars, and bars built from trades where the
exchange sent none (a feed outage, a venue without a candle stream, an interval it does not
send). Every bar says which it is, since a backtest that mixes them should know."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import pyarrow as pa

from marketstream.schemas.arrow import arrow_schema, to_arrow
from marketstream.schemas.columns import CANDLES
from marketstream.schemas.records import Candle

SOURCE_COLUMN: Final = "source"
FROM_EXCHANGE: Final = "exchange"
FROM_TRADES: Final = "trades"


def merge_bars(exchange_bars: Iterable[Candle], trade_bars: Iterable[Candle]) -> pa.Table:
    """One bar per open time, in time order: the exchange's closed bar where there is one,
    else the bar built from trades; a `source` column says which."""
    chosen: dict[int, tuple[Candle, str]] = {}
    for bar in trade_bars:
        chosen[bar.ts] = (bar, FROM_TRADES)
    for bar in exchange_bars:
        if bar.closed:
            chosen[bar.ts] = (bar, FROM_EXCHANGE)
    ordered = [chosen[ts] for ts in sorted(chosen)]
    table = to_arrow(CANDLES, [bar for bar, _ in ordered])
    return table.append_column(
        pa.field(SOURCE_COLUMN, pa.string(), nullable=False),
        pa.array([source for _, source in ordered], pa.string()),
    )


def empty_bars() -> pa.Table:
    """A day without bars, in `merge_bars`' layout."""
    schema = arrow_schema(CANDLES).append(pa.field(SOURCE_COLUMN, pa.string(), nullable=False))
    return schema.empty_table()


def count_sources(table: pa.Table) -> dict[str, int]:
    """Bars by source, for the summary and the manifest."""
    sources = table.column(SOURCE_COLUMN).to_pylist()
    return {name: sources.count(name) for name in (FROM_EXCHANGE, FROM_TRADES)}
