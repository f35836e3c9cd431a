"""Records to QuestDB ILP rows and QuestDB `/exec` result rows back to records.

Both directions are built once per table from the record spec, so a new field reaches the
hot tier without touching this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from questdb import Sender, TimestampNanos

from marketstream.schemas.columns import SPEC_BY_CLASS, TableSpec, levels_to_rows, rows_to_levels
from marketstream.schemas.records import Kind, Record

if TYPE_CHECKING:
    from questdb._client import RowColumnValue  # the stub's own alias for Sender.row columns

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ColumnValue = bool | int | float | str | TimestampNanos | np.ndarray[Any, np.dtype[np.float64]]


def _levels_array(levels: list[tuple[float, float]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    if not levels:
        return np.zeros((2, 0), dtype=np.float64)
    return np.array(levels_to_rows(levels), dtype=np.float64)


_TO_ILP: dict[Kind, Callable[[Any], ColumnValue]] = {
    Kind.TEXT: str,
    Kind.TIMESTAMP: TimestampNanos,
    Kind.FLOAT: float,
    Kind.INT: int,
    Kind.BOOL: bool,
    Kind.LEVELS: _levels_array,
}


@cache
def _row_layout(
    spec: TableSpec,
) -> tuple[tuple[str, ...], tuple[tuple[str, Callable[[Any], ColumnValue]], ...]]:
    symbols = tuple(c.name for c in spec.columns if c.kind is Kind.SYMBOL)
    others = tuple(
        (c.name, _TO_ILP[c.kind])
        for c in spec.columns
        if c.kind is not Kind.SYMBOL and c.name != spec.timestamp
    )
    return symbols, others


def ilp_row(
    record: Record,
) -> tuple[str, dict[str, str | None], dict[str, RowColumnValue], TimestampNanos]:
    """(table, symbols, columns, at) for `Sender.row`; None values are left out (NULL)."""
    spec = SPEC_BY_CLASS[type(record)]
    symbol_names, other_columns = _row_layout(spec)
    symbols: dict[str, str | None] = {name: getattr(record, name) for name in symbol_names}
    columns: dict[str, RowColumnValue] = {}
    for name, convert in other_columns:
        value = getattr(record, name)
        if value is not None:
            columns[name] = convert(value)
    return spec.table, symbols, columns, TimestampNanos(getattr(record, spec.timestamp))


def write_rows(sender: Sender, records: Iterable[Record]) -> int:
    """Buffer records in the sender (the caller flushes and learns the outcome); count them."""
    count = 0
    for record in records:
        table, symbols, columns, at = ilp_row(record)
        sender.row(table, symbols=symbols, columns=columns, at=at)
        count += 1
    return count


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
