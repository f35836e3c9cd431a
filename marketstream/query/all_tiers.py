"""Queries over every tier: a range is cut at UTC days, each day read from the one tier that
holds it, and the pieces joined in time order.

Days are the archiver's unit of move, and a day is verified in its new tier before the old
one drops it, so a day found in two tiers holds the same rows in both: reading it from one
of them (the hottest) gives neither gaps nor duplicates. Candle intervals (1s ... 1d) divide
a day, so no bar straddles two tiers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from itertools import groupby
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from marketstream.query.hot_queries import (
    INTERVALS,
    HotQueries,
    bar_ceil,
    check_exchange,
    check_interval,
    check_limit,
    check_range,
    check_symbol,
)
from marketstream.schemas.arrow import conform, from_arrow
from marketstream.schemas.columns import TRADES
from marketstream.schemas.records import Candle, Trade
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.cold_store import ColdStore
from marketstream.tiers.days import day_start_ns, days_between
from marketstream.tiers.questdb_partitions import HotTier

NS_PER_DAY: Final = 86_400 * 10**9


class TieredQueries:
    """Trades and candles for any range, from QuestDB, ClickHouse and the cold Parquet files."""

    def __init__(self, hot: HotQueries, hot_tier: HotTier, warm: WarmTier, cold: ColdStore) -> None:
        self.hot, self.hot_tier, self.warm, self.cold = hot, hot_tier, warm, cold

    def tiers_of(self, exchange: str, start_ns: int, end_ns: int) -> list[tuple[str, int, int]]:
        """(tier, start, end) pieces of [start_ns, end_ns), hottest tier first for each day."""
        hot_days = set(self.hot_tier.partitions(TRADES))
        warm_days = set(self.warm.partitions(TRADES))
        cold_days = {p.day for p in self.cold.partitions(TRADES.table) if p.exchange == exchange}

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
        exchange, symbol = check_exchange(exchange), check_symbol(symbol)
        start_ns, end_ns = check_range(start_ns, end_ns)
        limit = check_limit(limit)
        found: list[Trade] = []
        for tier, low, high in self.tiers_of(exchange, start_ns, end_ns):
            want = limit - len(found)
            if want <= 0:
                break
            if tier == "hot":
                found += self.hot.trades(exchange, symbol, low, high, limit=want)
            else:
                table = self._trades_table(tier, exchange, symbol, low, high, limit=want)
                found += [t for t in from_arrow(TRADES, table) if isinstance(t, Trade)]
        return found

    def ohlcv(
        self, exchange: str, symbol: str, interval: str, start_ns: int, end_ns: int
    ) -> list[Candle]:
        """Candles from trades for the bars opening in [start_ns, end_ns), across tiers."""
        exchange, symbol = check_exchange(exchange), check_symbol(symbol)
        step = check_interval(interval)
        start_ns, end_ns = check_range(start_ns, end_ns)
        low, high = bar_ceil(start_ns, step), bar_ceil(end_ns, step)
        candles: list[Candle] = []
        for tier, piece_low, piece_high in self.tiers_of(exchange, low, high):
            if tier == "hot":
                candles += self.hot.ohlcv(exchange, symbol, interval, piece_low, piece_high)
            elif tier == "warm":
                candles += self._warm_ohlcv(exchange, symbol, interval, piece_low, piece_high)
            else:
                table = self._trades_table(
                    "cold", exchange, symbol, piece_low, piece_high, limit=None
                )
                candles += ohlcv_from_trades(table, exchange, symbol, interval)
        return candles

    def _trades_table(
        self, tier: str, exchange: str, symbol: str, low: int, high: int, *, limit: int | None
    ) -> pa.Table:
        if tier == "warm":
            arrow = self.warm.client.query_arrow(
                f"SELECT {', '.join(TRADES.names)} FROM {self.warm.database}.{TRADES.table} "  # noqa: S608
                "WHERE exchange = {ex:String} AND symbol = {sym:String} "
                "AND ts >= fromUnixTimestamp64Nano({low:Int64}) "
                "AND ts < fromUnixTimestamp64Nano({high:Int64}) "
                "ORDER BY ts, trade_id LIMIT {limit:UInt64}",
                parameters={
                    "ex": exchange,
                    "sym": symbol,
                    "low": low,
                    "high": high,
                    "limit": limit if limit is not None else 2**63 - 1,
                },
            )
            return conform(TRADES, arrow)
        table = conform(TRADES, self.cold.read_range(TRADES, low, high, exchange, symbol))
        table = table.sort_by([("ts", "ascending"), ("trade_id", "ascending")])
        return table if limit is None else table.slice(0, limit)

    def _warm_ohlcv(
        self, exchange: str, symbol: str, interval: str, low: int, high: int
    ) -> list[Candle]:
        client: Client = self.warm.client
        step = INTERVALS[interval]  # bars on the UTC calendar: every interval divides a day
        source = f"{self.warm.database}.{TRADES.table}"  # names from our specs
        result = client.query(  # every value is a bound parameter
            "SELECT "  # noqa: S608 - see `source`
            "intDiv(toUnixTimestamp64Nano(ts), {step:Int64}) * {step:Int64} AS bar, "
            " argMin(price, ts), max(price), min(price), argMax(price, ts), sum(size), "
            f"count() FROM {source} "
            "WHERE exchange = {ex:String} AND symbol = {sym:String} "
            "AND ts >= fromUnixTimestamp64Nano({low:Int64}) "
            "AND ts < fromUnixTimestamp64Nano({high:Int64}) GROUP BY bar ORDER BY bar",
            parameters={"step": step, "ex": exchange, "sym": symbol, "low": low, "high": high},
        )
        return [
            Candle(exchange, symbol, interval, int(bar), o, h, lo, c, v, int(n), closed=True)
            for bar, o, h, lo, c, v, n in result.result_rows
        ]


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
