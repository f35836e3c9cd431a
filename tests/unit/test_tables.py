"""The store layouts derive from the record classes: every field, in order, with its keys."""

from __future__ import annotations

from pathlib import Path

import msgspec.structs
import pyarrow as pa
import pytest

from marketstream.config import S3Config
from marketstream.schemas.arrow import arrow_schema
from marketstream.schemas.columns import (
    PRICES,
    SPEC_BY_TABLE,
    SPECS,
    TRADES,
    TableSpec,
    levels_to_rows,
    rows_to_levels,
)
from marketstream.schemas.records import Kind, Price
from marketstream.tiers import clickhouse_tables, clickhouse_views, cold_parquet, questdb_tables
from marketstream.tiers.cold_store import ColdStore


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_columns_follow_the_record_fields(spec: TableSpec) -> None:
    assert spec.names == tuple(f.name for f in msgspec.structs.fields(spec.cls))
    assert spec.timestamp == "ts"
    assert set(spec.dedup_keys) <= set(spec.names)


def test_kinds_and_nullability_come_from_annotations() -> None:
    assert TRADES.column("exchange").kind is Kind.SYMBOL
    assert TRADES.column("trade_id").kind is Kind.TEXT
    assert TRADES.column("ts").kind is Kind.TIMESTAMP
    quotes = next(s for s in SPECS if s.table == "quotes")
    assert quotes.column("last_px").nullable
    assert quotes.column("bid_sz").nullable
    assert not quotes.column("bid_px").nullable


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_questdb_ddl(spec: TableSpec) -> None:
    sql = questdb_tables.create_table_sql(spec)
    for column in spec.columns:
        assert f"{column.name} {questdb_tables.questdb_type(column)}" in sql
    assert "TIMESTAMP(ts) PARTITION BY DAY WAL" in sql
    assert f"DEDUP UPSERT KEYS({', '.join(spec.dedup_keys)})" in sql


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_clickhouse_ddl(spec: TableSpec) -> None:
    sql = clickhouse_tables.create_table_sql(spec)
    for column in spec.columns:
        assert clickhouse_tables.column_sql(column) in sql
        assert ("Nullable(" in clickhouse_tables.clickhouse_type(column)) == column.nullable
    assert "ORDER BY (exchange, symbol, ts)" in sql
    assert "PARTITION BY toDate(ts)" in sql


def test_prices_have_a_table_in_every_tier_keyed_by_tick(tmp_path: Path) -> None:
    """A polled price is one row per (tick, source, symbol) in every tier: QuestDB upserts a
    retried or replayed poll, ClickHouse and Parquet keep the same order, nulls kept."""
    assert SPEC_BY_TABLE["prices"] is PRICES
    assert PRICES.cls is Price
    assert PRICES.dedup_keys == ("ts", "exchange", "symbol")
    assert questdb_tables.create_table_sql(PRICES) in questdb_tables.create_all_sql()
    assert questdb_tables.create_table_sql(PRICES) == (
        "CREATE TABLE IF NOT EXISTS prices (exchange SYMBOL, symbol SYMBOL, ts TIMESTAMP_NS, "
        "recv_ts TIMESTAMP_NS, price DOUBLE, source_ts TIMESTAMP_NS, block LONG, "
        "liquidity DOUBLE, change_24h DOUBLE) TIMESTAMP(ts) PARTITION BY DAY WAL "
        "DEDUP UPSERT KEYS(ts, exchange, symbol)"
    )
    warm = clickhouse_tables.create_table_sql(PRICES)
    assert warm in clickhouse_tables.create_all_sql()
    assert "source_ts Nullable(DateTime64(9, 'UTC'))" in warm
    assert "block Nullable(Int64)" in warm
    assert "price Float64" in warm
    assert "liquidity Nullable(Float64)" in warm
    assert "change_24h Nullable(Float64)" in warm
    assert "ORDER BY (exchange, symbol, ts)" in warm
    store = ColdStore.from_location(str(tmp_path), S3Config())
    assert "prices_all" in " ".join(clickhouse_views.create_all_views_sql(store))
    schema = arrow_schema(PRICES)
    assert schema.field("source_ts").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("source_ts").nullable
    assert schema.field("block").type == pa.int64()
    assert schema.field("block").nullable
    assert not schema.field("price").nullable
    assert cold_parquet.sort_keys(PRICES)[:2] == [("symbol", "ascending"), ("ts", "ascending")]


def test_levels_layout_round_trip() -> None:
    levels = [(10.0, 1.0), (9.0, 2.0)]
    assert levels_to_rows(levels) == [[10.0, 9.0], [1.0, 2.0]]
    assert rows_to_levels(levels_to_rows(levels)) == levels
    assert rows_to_levels(levels_to_rows([])) == []
