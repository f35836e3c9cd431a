"""ClickHouse warm tables derived from the record specs, with codecs chosen per column kind.

Timestamps and sequence numbers grow steadily, so delta coding shrinks them to a few bits;
prices move little from row to row, which Gorilla's XOR coding exploits; ZSTD finishes both.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.columns import SPECS, Column, TableSpec
from marketstream.schemas.records import Kind

_TYPES: Final[dict[Kind, tuple[str, str]]] = {
    Kind.SYMBOL: ("LowCardinality(String)", ""),
    Kind.TEXT: ("String", "CODEC(ZSTD(1))"),
    Kind.TIMESTAMP: ("DateTime64(9, 'UTC')", "CODEC(DoubleDelta, ZSTD(1))"),
    Kind.FLOAT: ("Float64", "CODEC(Gorilla, ZSTD(1))"),
    Kind.INT: ("Int64", "CODEC(Delta, ZSTD(1))"),
    Kind.BOOL: ("Bool", ""),
    Kind.LEVELS: ("Array(Array(Float64))", "CODEC(ZSTD(3))"),  # [prices, sizes]
}


def clickhouse_type(column: Column) -> str:
    base, _ = _TYPES[column.kind]
    return f"Nullable({base})" if column.nullable else base


def column_sql(column: Column) -> str:
    _, codec = _TYPES[column.kind]
    return f"{column.name} {clickhouse_type(column)} {codec}".rstrip()


def create_table_sql(spec: TableSpec, database: str = "default", name: str | None = None) -> str:
    """MergeTree ordered for per-instrument time scans, one partition per UTC day; `name`
    gives the same layout another name (the archiver's staging tables)."""
    columns = ", ".join(column_sql(c) for c in spec.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{name or spec.table} ({columns}) "
        f"ENGINE = MergeTree PARTITION BY toDate({spec.timestamp}) "
        f"ORDER BY (exchange, symbol, {spec.timestamp})"
    )


def create_all_sql(database: str = "default") -> list[str]:
    return [create_table_sql(spec, database) for spec in SPECS]
