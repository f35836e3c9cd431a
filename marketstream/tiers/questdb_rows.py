"""Records to QuestDB ILP rows and QuestDB `/exec` result rows back to records.

Both directions are built once per table from the record spec, so a new field reaches the
hot tier without touching this module. Writing goes through the client's columnar path: one
Arrow-backed DataFrame per table and `Sender.dataframe`, which serializes the rows in native
code (order book sides as 2 x N float64 arrays, ILP protocol 2), instead of a dict and a
`Sender.row` call per record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs; Sender.dataframe takes a frame
import pyarrow as pa
from questdb import Sender

from marketstream.schemas.columns import (
    SPEC_BY_CLASS,
    Column,
    TableSpec,
    levels_to_rows,
    rows_to_levels,
)
from marketstream.schemas.entry_structs import ENTRY_STRUCTS
from marketstream.schemas.records import Kind, Record

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Arrow types of the columns handed to `Sender.dataframe` (the client's columnar path).
# Arrow-backed columns carry nulls, which the client leaves out of the row (NULL in QuestDB).
_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.SYMBOL: pa.string(),
    Kind.TEXT: pa.string(),
    Kind.TIMESTAMP: pa.timestamp("ns"),
    Kind.FLOAT: pa.float64(),
    Kind.INT: pa.int64(),
    Kind.BOOL: pa.bool_(),
}
_SPEC_BY_ROW_TYPE: dict[type, TableSpec] = {**SPEC_BY_CLASS, **ENTRY_STRUCTS}


def _levels_array(levels: list[tuple[float, float]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    if not levels:
        return np.zeros((2, 0), dtype=np.float64)
    return np.array(levels_to_rows(levels), dtype=np.float64)


_Layout = tuple[TableSpec, list[str], tuple[Column, ...]]
_LAYOUTS: dict[type, _Layout] = {}


def _layout(record_type: type) -> _Layout:
    """(spec, symbol column names, columns) of a record class or entry struct."""
    layout = _LAYOUTS.get(record_type)
    if layout is None:
        spec = _SPEC_BY_ROW_TYPE[record_type]
        symbols = [c.name for c in spec.columns if c.kind is Kind.SYMBOL]
        layout = _LAYOUTS[record_type] = (spec, symbols, spec.columns)
    return layout


def table_of(record_type: type) -> str:
    return _layout(record_type)[0].table


@dataclass(frozen=True, slots=True)
class TableRows:
    """Rows of one table as columns: the frame `Sender.dataframe` takes, and the timestamps
    the writer's freshness metrics read."""

    table: str
    symbols: list[str]
    timestamp: str
    frame: Any  # pandas.DataFrame (pandas ships no type stubs)
    ts: pa.Array[Any]
    recv_ts: pa.Array[Any] | None


def table_rows(rows: Sequence[Any]) -> TableRows:
    """Columns of rows of one type (record dataclasses or decoded entry structs).

    Raises ValueError, TypeError or OverflowError when a value does not fit its column.
    """
    spec, symbols, columns = _layout(type(rows[0]))
    data: dict[str, Any] = {}
    arrays: dict[str, pa.Array[Any]] = {}
    for column in columns:
        values = list(map(attrgetter(column.name), rows))  # C-level: no bytecode per value
        if column.kind is Kind.LEVELS:
            data[column.name] = pd.Series([_levels_array(v) for v in values], dtype=object)
            continue
        array = pa.array(values, _ARROW_TYPES[column.kind])
        arrays[column.name] = array
        data[column.name] = pd.arrays.ArrowExtensionArray(array)
    return TableRows(
        spec.table,
        symbols,
        spec.timestamp,
        pd.DataFrame(data, copy=False),
        arrays[spec.timestamp],
        arrays.get("recv_ts"),
    )


def write_table(sender: Sender, rows: TableRows) -> None:
    """Buffer one table's rows; on an error the client leaves the buffer as it was."""
    sender.dataframe(rows.frame, table_name=rows.table, symbols=rows.symbols, at=rows.timestamp)


def write_rows(sender: Sender, records: Iterable[Any]) -> int:
    """Buffer records (any mix of tables, one frame per table); the caller flushes and
    learns the outcome. Returns how many were buffered."""
    by_type: dict[type, list[Any]] = {}
    for record in records:
        by_type.setdefault(type(record), []).append(record)
    for rows in by_type.values():
        write_table(sender, table_rows(rows))
    return sum(len(rows) for rows in by_type.values())


def parse_timestamp_ns(text: str) -> int:
    """QuestDB's `2023-11-14T22:13:20.000000001Z` to exact int nanoseconds since the epoch."""
    seconds_part, _, fraction = text.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(seconds_part).replace(tzinfo=UTC)
    seconds = (whole - _EPOCH) // _ONE_SECOND
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


_ONE_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC) - _EPOCH

_FROM_JSON: dict[Kind, Callable[[Any], Any]] = {
    Kind.SYMBOL: str,
    Kind.TEXT: str,
    Kind.TIMESTAMP: parse_timestamp_ns,
    Kind.FLOAT: float,
    Kind.INT: int,
    Kind.BOOL: bool,
    Kind.LEVELS: rows_to_levels,
}


def records_from_result(
    spec: TableSpec, column_names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> list[Record]:
    """Records from `/exec` JSON rows holding at least the spec's columns, in any order."""
    position = {name: i for i, name in enumerate(column_names)}
    readers = [(position[c.name], _FROM_JSON[c.kind]) for c in spec.columns]
    records: list[Record] = []
    for row in rows:
        values: list[Any] = [None if row[i] is None else read(row[i]) for i, read in readers]
        records.append(spec.cls(*values))
    return records
