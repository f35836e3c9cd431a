"""The store layouts derive from the record classes: every field, in order, with its keys."""

from __future__ import annotations

import dataclasses

import pytest

from marketstream.schemas.columns import (
    SPECS,
    TRADES,
    TableSpec,
    levels_to_rows,
    rows_to_levels,
)
from marketstream.schemas.records import Kind
from marketstream.tiers import clickhouse_tables, questdb_tables


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_columns_follow_the_record_fields(spec: TableSpec) -> None:
    assert spec.names == tuple(f.name for f in dataclasses.fields(spec.cls))
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


def test_levels_layout_round_trip() -> None:
    levels = [(10.0, 1.0), (9.0, 2.0)]
    assert levels_to_rows(levels) == [[10.0, 9.0], [1.0, 2.0]]
    assert rows_to_levels(levels_to_rows(levels)) == levels
    assert rows_to_levels(levels_to_rows([])) == []
