"""QuestDB tables derived from the record specs: WAL, daily partitions, dedup upsert keys;
and the materialized views over them.

Deduplication on the spec's keys makes the hot writer's at-least-once delivery exactly-once
in effect: a batch written twice (after a crash before XACK) changes nothing.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.columns import SPECS, TRADES, Column, TableSpec
from marketstream.schemas.records import Kind

_TYPES: Final[dict[Kind, str]] = {
    Kind.SYMBOL: "SYMBOL",
    Kind.TEXT: "VARCHAR",
    Kind.TIMESTAMP: "TIMESTAMP_NS",
    Kind.FLOAT: "DOUBLE",
    Kind.INT: "LONG",
    Kind.BOOL: "BOOLEAN",
    Kind.LEVELS: "DOUBLE[][]",  # [prices, sizes]: bids[1][1] is the best bid price
}


def questdb_type(column: Column) -> str:
    return _TYPES[column.kind]


def create_table_sql(spec: TableSpec) -> str:
    """Idempotent CREATE TABLE; nullable columns need nothing (QuestDB types carry NULL)."""
    columns = ", ".join(f"{c.name} {questdb_type(c)}" for c in spec.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {spec.table} ({columns}) "
        f"TIMESTAMP({spec.timestamp}) PARTITION BY DAY WAL "
        f"DEDUP UPSERT KEYS({', '.join(spec.dedup_keys)})"
    )


def create_all_sql() -> list[str]:
    return [create_table_sql(spec) for spec in SPECS]


OHLCV_1M_VIEW: Final = "trades_ohlcv_1m"


def create_views_sql() -> list[str]:
    """Idempotent materialized views over the tables, to run after `create_all_sql()`.

    `trades_ohlcv_1m` keeps 1-minute OHLCV bars per exchange and symbol, aligned to the UTC
    calendar. QuestDB refreshes it incrementally after each committed WAL transaction of
    `trades` (REFRESH IMMEDIATE, the default), so a 1m candle query reads one row per bar
    instead of every trade; a refresh recomputes only the minutes its transaction touched.
    """
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {OHLCV_1M_VIEW} AS ("  # noqa: S608 - our names
        "SELECT ts, exchange, symbol, first(price) open, max(price) high, min(price) low, "
        f"last(price) close, sum(size) volume, count() trades FROM {TRADES.table} SAMPLE BY 1m"
        ") PARTITION BY DAY"
    ]
