"""Arrow layouts of the records, for Parquet files and columnar hand-offs between tiers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from operator import attrgetter
from typing import Any, Final

import pyarrow as pa

from marketstream.errors import MarketStreamError
from marketstream.schemas.columns import Column, TableSpec, levels_to_rows, rows_to_levels
from marketstream.schemas.records import Kind, Record

SCHEMA_VERSION: Final = "1"

_TYPES: Final[dict[Kind, pa.DataType]] = {
    Kind.SYMBOL: pa.string(),
    Kind.TEXT: pa.string(),
    Kind.TIMESTAMP: pa.timestamp("ns", tz="UTC"),
    Kind.FLOAT: pa.float64(),
    Kind.INT: pa.int64(),
    Kind.BOOL: pa.bool_(),
    Kind.LEVELS: pa.list_(pa.list_(pa.float64())),  # [prices, sizes]
}


def arrow_type(column: Column) -> pa.DataType:
    return _TYPES[column.kind]


@cache
def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The table's schema, with the record type and schema version in its metadata."""
    return pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in spec.columns],
        metadata={"marketstream.type": spec.record_type, "marketstream.schema": SCHEMA_VERSION},
    )


def to_arrow(spec: TableSpec, records: Sequence[Record]) -> pa.Table:
    """Column-wise conversion; timestamps stay exact int64 nanoseconds."""
    arrays = []
    for column in spec.columns:
        values: list[Any] = list(map(attrgetter(column.name), records))
        if column.kind is Kind.LEVELS:
            values = [levels_to_rows(v) for v in values]
        arrays.append(pa.array(values, type=arrow_type(column)))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(spec))


def from_arrow(spec: TableSpec, table: pa.Table) -> list[Record]:
    """Records back from a table holding at least the spec's columns (extra ones ignored)."""
    columns: list[list[Any]] = []
    for column in spec.columns:
        array = table.column(column.name)
        if column.kind is Kind.TIMESTAMP:
            array = array.cast(pa.int64())
        values = array.to_pylist()
        if column.kind is Kind.LEVELS:
            values = [rows_to_levels(v) for v in values]
        columns.append(values)
    return [spec.cls(*row) for row in zip(*columns, strict=True)]


class StoredDataError(MarketStreamError, ValueError):
    """Rows read back from a store do not fit their schema."""


def conform(spec: TableSpec, table: pa.Table) -> pa.Table:
    """A table read from any tier, as the spec's schema: its columns in order, each cast.

    Stores hand back their own spelling of the same data (dictionary strings, non-null list
    elements, extra metadata); moving and comparing tiers needs one exact layout.
    A null in a column that cannot hold one raises StoredDataError: a store that loses
    values (QuestDB 9.3.4 exports VARCHAR columns to Parquet as nulls) must stop a move.
    """
    schema = arrow_schema(spec)
    columns = []
    for field in schema:
        column = table.column(field.name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not field.nullable and column.null_count:
            raise StoredDataError(
                f"{spec.table}.{field.name}: {column.null_count} of {len(column)} values are "
                "null, expected none (the store lost them)"
            )
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)
