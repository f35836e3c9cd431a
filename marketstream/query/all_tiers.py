"""Queries over every tier: a range is cut at UTC days, each day read from the one tier that
holds it, and the pieces joined in time order.

Days are the archiver's unit of move, and a day is verified in its new tier before the old
one drops it, so a day found in two tiers holds the same rows in both: reading it from one
of them (the hottest) gives neither gaps nor duplicates. Candle intervals (1s ... 1d) divide
a day, so no bar straddles two tiers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date
from itertools import groupby
from typing import Final, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marketstream.query.hot_queries import (
    INTERVALS,
    CandleSource,
    HotQueries,
    RangeQuery,
    bar_ceil,
    check_exchange,
    check_interval,
    check_range,
    check_symbol,
    format_ns,
    order_keys,
)
from marketstream.schemas.arrow import arrow_schema, conform, from_arrow, to_arrow
from marketstream.schemas.columns import INSTRUMENTS, TRADES, TableSpec
from marketstream.schemas.records import Book, Candle, Instrument, Record, Trade
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.cold_store import ColdStore
from marketstream.tiers.days import day_start_ns, days_between
from marketstream.tiers.questdb_partitions import HotTier, exported_columns

NS_PER_DAY: Final = 86_400 * 10**9
R = TypeVar("R", bound=Record)


class TieredQueries:
    """Every record type (trades, candles, books, polled source prices, ...) for any range,
    and the instruments, from QuestDB, ClickHouse and the cold Parquet files."""

    def __init__(self, hot: HotQueries, hot_tier: HotTier, warm: WarmTier, cold: ColdStore) -> None:
        self.hot, self.hot_tier, self.warm, self.cold = hot, hot_tier, warm, cold

    def tiers_of(
        self, exchange: str, start_ns: int, end_ns: int, spec: TableSpec = TRADES
    ) -> list[tuple[str, int, int]]:
        """(tier, start, end) pieces of [start_ns, end_ns), hottest tier first for each day
        (days as the tiers hold them for `spec`'s table)."""
        hot_days = set(self.hot_tier.partitions(spec))
        warm_days = set(self.warm.partitions(spec))
        cold_days = {p.day for p in self.cold.partitions(spec.table) if p.exchange == exchange}

        def tier(day: date) -> str:
            if day in hot_days:
                return "hot"
            if day in warm_days:
                return "warm"
            return "cold" if day in cold_days else ""

        pieces = []
        for name, run in groupby(days_between(start_ns, end_ns), key=tier):
            days = list(run)
            if name:
                low = max(start_ns, day_start_ns(days[0]))
                high = min(end_ns, day_start_ns(days[-1]) + NS_PER_DAY)
                pieces.append((name, low, high))
        return pieces

    def trades(
        self, exchange: str, symbol: str, start_ns: int, end_ns: int, *, limit: int = 10_000
    ) -> list[Trade]:
        """Trades with start_ns <= ts < end_ns in time order, at most `limit` (the earliest)."""
        return self.records(RangeQuery(Trade, exchange, symbol, start_ns, end_ns, limit))

    def records(self, query: RangeQuery[R]) -> list[R]:
        """The query's records, in `order_keys` order: each tier's piece, hottest first."""
        found: list[R] = []
        for tier, low, high in self.tiers_of(
            query.exchange, query.start_ns, query.end_ns, query.spec
        ):
            want = query.limit - len(found)
            if want <= 0:
                break
            piece = replace(query, start_ns=low, end_ns=high, limit=want)
            if tier == "hot":
                found += self.hot.records(piece)
            else:
                table = self._range_table(
                    piece.spec, tier, piece.exchange, piece.symbol, low, high, limit=want
                )
                found += [
                    r for r in from_arrow(piece.spec, table) if isinstance(r, query.record_type)
                ]
        return found

    def range_table(
        self,
        spec: TableSpec,
        exchange: str,
        symbol: str,
        start_ns: int,
        end_ns: int,
        *,
        limit: int | None,
    ) -> pa.Table:
        """One instrument's rows of any record type (books included) with start_ns <= ts <
        end_ns as Arrow, in `order_keys` order, at most `limit` (the earliest; None: all of
        them): each day from the hottest tier holding it."""
        exchange, symbol = check_exchange(exchange), check_symbol(symbol)
        start_ns, end_ns = check_range(start_ns, end_ns)
        pieces: list[pa.Table] = []
        found = 0
        for tier, low, high in self.tiers_of(exchange, start_ns, end_ns, spec):
            want = None if limit is None else limit - found
            if want is not None and want <= 0:
                break
            if tier != "hot":
                table = self._range_table(spec, tier, exchange, symbol, low, high, limit=want)
            elif spec.cls is Book or want is None:
                table = self._hot_export(spec, exchange, symbol, low, high, want)
            else:
                query = RangeQuery(spec.cls, exchange, symbol, low, high, want)
                table = to_arrow(spec, self.hot.records(query))
            pieces.append(table)
            found += table.num_rows
        if not pieces:
            return arrow_schema(spec).empty_table()
        return pa.concat_tables(pieces)

    def _hot_export(  # noqa: PLR0917 - a piece of a range
        self, spec: TableSpec, exchange: str, symbol: str, low: int, high: int, limit: int | None
    ) -> pa.Table:
        """Rows from QuestDB through its Parquet export: books (it keeps the level arrays
        that the PG wire does not carry), and whole ranges (columnar, and without the PG
        path's row cap). /exp takes no bound parameters: every value here is checked (a
        known exchange, a normalized symbol, integers) before it is written in."""
        cap = "" if limit is None else f" LIMIT {int(limit)}"
        sql = (
            f"SELECT {exported_columns(spec)} FROM {spec.table} "  # noqa: S608 - checked values
            f"WHERE exchange = '{check_exchange(exchange)}' "
            f"AND symbol = '{check_symbol(symbol)}' "
            f"AND ts >= '{format_ns(int(low))}' AND ts < '{format_ns(int(high))}' "
            f"ORDER BY {', '.join(order_keys(spec))}{cap}"
        )
        data = self.hot_tier.http.export(sql)
        if not data:
            return arrow_schema(spec).empty_table()
        return conform(spec, pq.read_table(pa.BufferReader(data)))

    def instruments(self, exchange: str | None = None) -> list[Instrument]:
        """The newest metadata row of every instrument (of one exchange) in any tier, sorted
        by exchange and symbol.

        The hot and warm tiers answer for all their rows; the cold tier for its newest day of
        each exchange: instruments are read again at every ingest start and refresh, so an
        instrument listed on an older cold day only was delisted before that newest day.
        """
        if exchange is not None:
            exchange = check_exchange(exchange)
        rows: list[Instrument] = list(self.hot.instruments(exchange))
        rows += self._warm_instruments(exchange)
        rows += self._cold_instruments(exchange)
        return latest_instruments(rows)

    def _warm_instruments(self, exchange: str | None) -> list[Instrument]:
        where = "" if exchange is None else " WHERE exchange = {ex:String}"
        arrow = self.warm.client.query_arrow(
            f"SELECT {', '.join(INSTRUMENTS.names)} FROM "  # noqa: S608 - names from our specs
            f"{self.warm.database}.{INSTRUMENTS.table}{where} "
            "ORDER BY ts DESC LIMIT 1 BY exchange, symbol",
            parameters={"ex": exchange} if exchange is not None else {},
        )
        table = conform(INSTRUMENTS, arrow)
        return [r for r in from_arrow(INSTRUMENTS, table) if isinstance(r, Instrument)]

    def _cold_instruments(self, exchange: str | None) -> list[Instrument]:
        newest: dict[str, date] = {}
        for part in self.cold.partitions(INSTRUMENTS.table, exchange):
            newest[part.exchange] = max(part.day, newest.get(part.exchange, part.day))
        found: list[Instrument] = []
        for name, day in sorted(newest.items()):
            start = day_start_ns(day)
            table = self.cold.read_range(INSTRUMENTS, start, start + NS_PER_DAY, name)
            found += [r for r in from_arrow(INSTRUMENTS, table) if isinstance(r, Instrument)]
        return found

    def ohlcv(
        self,
        exchange: str,
        symbol: str,
        interval: str,
        start_ns: int,
        end_ns: int,
        *,
        source: CandleSource = "auto",
    ) -> list[Candle]:
        """Candles from trades for the bars opening in [start_ns, end_ns), across tiers;
        `source` is the hot tier's (`HotQueries.ohlcv`: "trades" needs no materialized view)."""
        exchange, symbol = check_exchange(exchange), check_symbol(symbol)
        step = check_interval(interval)
        start_ns, end_ns = check_range(start_ns, end_ns)
        low, high = bar_ceil(start_ns, step), bar_ceil(end_ns, step)
        candles: list[Candle] = []
        for tier, piece_low, piece_high in self.tiers_of(exchange, low, high):
            if tier == "hot":
                candles += self.hot.ohlcv(
                    exchange, symbol, interval, piece_low, piece_high, source=source
                )
            elif tier == "warm":
                candles += warm_ohlcv(self.warm, exchange, symbol, interval, piece_low, piece_high)
            else:
                table = self._range_table(
                    TRADES, "cold", exchange, symbol, piece_low, piece_high, limit=None
                )
                candles += ohlcv_from_trades(table, exchange, symbol, interval)
        return candles

    def _range_table(  # noqa: PLR0917 - a piece of a range
        self,
        spec: TableSpec,
        tier: str,
        exchange: str,
        symbol: str,
        low: int,
        high: int,
        *,
        limit: int | None,
    ) -> pa.Table:
        """One instrument's rows of [low, high) in a warm or cold piece, in `order_keys`."""
        order = order_keys(spec)
        if tier == "warm":
            arrow = self.warm.client.query_arrow(
                f"SELECT {', '.join(spec.names)} FROM {self.warm.database}.{spec.table} "  # noqa: S608
                "WHERE exchange = {ex:String} AND symbol = {sym:String} "
                "AND ts >= fromUnixTimestamp64Nano({low:Int64}) "
                "AND ts < fromUnixTimestamp64Nano({high:Int64}) "
                f"ORDER BY {', '.join(order)} LIMIT {{limit:UInt64}}",
                parameters={
                    "ex": exchange,
                    "sym": symbol,
                    "low": low,
                    "high": high,
                    "limit": limit if limit is not None else 2**63 - 1,
                },
            )
            return conform(spec, arrow)
        table = conform(spec, self.cold.read_range(spec, low, high, exchange, symbol))
        table = table.sort_by([(name, "ascending") for name in order])
        return table if limit is None else table.slice(0, limit)


# Open and close by the tiers' order, (ts, trade id): trades often share a ts. In two steps,
# each bar's first and last ts, then the trade ids at those times only: `argMin(price,
# (ts, trade_id))` over every row built a tuple with a string per row, 62 of 72 ms for a day of
# 165,443 trades in chdb, where these take 29 ms for the same bars. `picked` is read twice.
_WARM_OHLCV: Final = """
WITH picked AS (
  SELECT intDiv(toUnixTimestamp64Nano(ts), {{step:Int64}}) * {{step:Int64}} AS bar,
         ts, trade_id, price, size
  FROM {source}
  WHERE exchange = {{ex:String}} AND symbol = {{sym:String}}
    AND ts >= fromUnixTimestamp64Nano({{low:Int64}})
    AND ts < fromUnixTimestamp64Nano({{high:Int64}})
),
bars AS (
  SELECT bar, min(ts) AS first_ts, max(ts) AS last_ts, max(price) AS hi, min(price) AS lo,
         sum(size) AS volume, count() AS n
  FROM picked GROUP BY bar
),
ends AS (
  SELECT bar, argMinIf(price, trade_id, ts = first_ts) AS open,
         argMaxIf(price, trade_id, ts = last_ts) AS close
  FROM picked INNER JOIN bars USING (bar)
  WHERE ts = first_ts OR ts = last_ts
  GROUP BY bar
)
SELECT bar, open, hi, lo, close, volume, n FROM bars INNER JOIN ends USING (bar) ORDER BY bar
"""


def warm_ohlcv(  # noqa: PLR0917 - an instrument, an interval and a range, as `ohlcv`
    warm: WarmTier, exchange: str, symbol: str, interval: str, low: int, high: int
) -> list[Candle]:
    """Closed candles of the warm tier's trades of one instrument in [low, high)."""
    step = INTERVALS[interval]  # bars on the UTC calendar: every interval divides a day
    source = f"{warm.database}.{TRADES.table}"  # names from our specs
    result = warm.client.query(  # every value is a bound parameter
        _WARM_OHLCV.format(source=source),
        parameters={"step": step, "ex": exchange, "sym": symbol, "low": low, "high": high},
    )
    return [
        Candle(exchange, symbol, interval, int(bar), o, h, lo, c, v, int(n), closed=True)
        for bar, o, h, lo, c, v, n in result.result_rows
    ]


def latest_instruments(rows: Iterable[Instrument]) -> list[Instrument]:
    """The newest row of each (exchange, symbol), sorted by them; on a tie, the first given."""
    latest: dict[tuple[str, str], Instrument] = {}
    for row in rows:
        key = (row.exchange, row.symbol)
        if key not in latest or row.ts > latest[key].ts:
            latest[key] = row
    return [latest[key] for key in sorted(latest)]


def ohlcv_from_trades(table: pa.Table, exchange: str, symbol: str, interval: str) -> list[Candle]:
    """Closed candles of the trades in `table` (already one instrument), open/close by time."""
    if table.num_rows == 0:
        return []
    step = INTERVALS[interval]
    ts = pc.cast(table.column("ts"), pa.int64())
    bars = pc.multiply(pc.divide(ts, step), step)  # integer division: floor for ts >= 0
    ordered = pa.table(
        {"bar": bars, "ts": ts, "price": table.column("price"), "size": table.column("size")}
    ).sort_by([("bar", "ascending"), ("ts", "ascending")])
    grouped = (
        ordered.group_by("bar", use_threads=False)
        .aggregate(
            [
                ("price", "first"),
                ("price", "max"),
                ("price", "min"),
                ("price", "last"),
                ("size", "sum"),
                ("price", "count"),
            ]
        )
        .sort_by("bar")
    )
    row: Callable[[str], list[object]] = lambda name: grouped.column(name).to_pylist()  # noqa: E731
    return [
        Candle(exchange, symbol, interval, int(b), o, h, lo, c, v, int(n), closed=True)
        for b, o, h, lo, c, v, n in zip(
            row("bar"),
            row("price_first"),
            row("price_max"),
            row("price_min"),
            row("price_last"),
            row("size_sum"),
            row("price_count"),
            strict=True,
        )
    ]
