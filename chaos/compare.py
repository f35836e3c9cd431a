"""Row-by-row comparison of an expected set with what a store holds, over every column.

Rows are compared as tuples of plain Python values (timestamps as int nanoseconds, book sides
as nested tuples, nulls as None): floats must be equal bit for bit, as every tier keeps
float64 exactly. Each row has a key (the table's dedup keys, with `ts`): per key, a store
must hold exactly one row equal to the expected one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from marketstream.schemas.arrow import conform
from marketstream.schemas.checksum import key_columns
from marketstream.schemas.columns import TableSpec
from marketstream.schemas.records import Record

Row = tuple[Any, ...]
EXAMPLES = 3


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def rows_of_table(spec: TableSpec, table: pa.Table) -> list[Row]:
    """Every row of a table in the spec's column order (timestamps as int ns)."""
    table = conform(spec, table)
    columns = []
    for name in spec.names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        columns.append([_plain(v) for v in column.to_pylist()])
    return list(zip(*columns, strict=True))


def rows_of_records(spec: TableSpec, records: Iterable[Record]) -> list[Row]:
    """Records as rows; book sides as the stores keep them ([prices, sizes])."""
    from marketstream.schemas.arrow import to_arrow  # noqa: PLC0415

    return rows_of_table(spec, to_arrow(spec, list(records)))


def key_of(spec: TableSpec) -> list[int]:
    return [spec.names.index(name) for name in key_columns(spec)]


def collapse(spec: TableSpec, rows: Sequence[Row]) -> dict[Row, Row]:
    """One row per key, the last one winning: what an upsert store ends up holding."""
    index = key_of(spec)
    return {tuple(row[i] for i in index): row for row in rows}


@dataclass
class Diff:
    """How a store's rows differ from the expected ones, per key."""

    expected: int = 0
    held: int = 0
    lost: int = 0
    duplicated: int = 0  # a key held more than once (extra copies)
    unexpected: int = 0  # a key held that was never expected
    altered: int = 0  # a key held once or more with a row differing in some column
    examples: list[str] = field(default_factory=list)

    def add(self, other: Diff) -> None:
        for name in ("expected", "held", "lost", "duplicated", "unexpected", "altered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples.extend(other.examples[: max(0, EXAMPLES - len(self.examples))])

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected or self.altered)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "expected": self.expected,
            "held": self.held,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "altered": self.altered,
        }
        if self.examples:
            out["examples"] = self.examples
        return out


def compare_keyed(
    spec: TableSpec, expected: dict[Row, Row], held_rows: Sequence[Row], what: str
) -> Diff:
    """Expected rows by key against every row a store holds."""
    index = key_of(spec)
    held: defaultdict[Row, list[Row]] = defaultdict(list)
    for row in held_rows:
        held[tuple(row[i] for i in index)].append(row)
    diff = Diff(expected=len(expected), held=len(held_rows))

    def example(text: str) -> None:
        if len(diff.examples) < EXAMPLES:
            diff.examples.append(f"{what}: {text}"[:600])

    for key, row in expected.items():
        rows = held.get(key)
        if rows is None:
            diff.lost += 1
            example(f"lost {dict(zip(spec.names, row, strict=True))}")
            continue
        diff.duplicated += len(rows) - 1
        if any(r != row for r in rows):
            diff.altered += 1
            changed = {
                n: (e, h) for n, e, h in zip(spec.names, row, rows[-1], strict=True) if e != h
            }
            example(f"altered key {key}: (expected, held) {changed}")
    for key, rows in held.items():
        if key not in expected:
            diff.unexpected += len(rows)
            example(f"unexpected {dict(zip(spec.names, rows[0], strict=True))}")
    return diff


def compare_multiset(expected: Sequence[Row], held: Sequence[Row], what: str) -> Diff:
    """Rows without a usable key (quotes without their receive time): counted as multisets."""
    want, have = Counter(expected), Counter(held)
    diff = Diff(expected=len(expected), held=len(held))
    diff.lost = sum((want - have).values())
    extra = have - want
    diff.duplicated = sum(n for row, n in extra.items() if row in want)
    diff.unexpected = sum(extra.values()) - diff.duplicated
    for row in list((want - have).elements())[:EXAMPLES]:
        diff.examples.append(f"{what}: lost {row}"[:600])
    return diff


def without(spec: TableSpec, rows: Iterable[Row], excluded: Sequence[str]) -> list[Row]:
    keep = [i for i, name in enumerate(spec.names) if name not in excluded]
    return [tuple(row[i] for i in keep) for row in rows]
