"""How commands print: one JSON document, records as JSON lines or an aligned table, and the
services' status lines."""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
import orjson

from marketstream.schemas.columns import SPECS
from marketstream.schemas.records import Kind

if TYPE_CHECKING:
    from marketstream.services.state import ServicesStatus

ROW_FORMATS = ("json", "table")
# Shown as ISO-8601 in tables: every timestamp column of any record (a price's `source_ts` too).
_TIMESTAMP_FIELDS = frozenset(
    c.name for spec in SPECS for c in spec.columns if c.kind is Kind.TIMESTAMP
)


def print_json(body: object) -> None:
    """One indented JSON document on stdout."""
    sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_status(status: ServicesStatus, *, as_json: bool) -> None:
    if as_json:
        print_json(status.as_dict())
        return
    for line in status.lines():
        print(line)


def print_rows(rows: Sequence[object], output: str) -> None:
    """JSON lines (records as `normalize` prints them), or a table with ISO-8601 timestamps."""
    if output == "json":
        sys.stdout.buffer.write(b"".join(_row_json(row) + b"\n" for row in rows))
        sys.stdout.buffer.flush()
        return
    header = _field_names(rows)
    if not header:
        return
    cells = [[_cell(name, getattr(row, name)) for name in header] for row in rows]
    numeric = [
        name not in _TIMESTAMP_FIELDS
        and all(isinstance(getattr(row, name), int | float | None) for row in rows)
        for name in header
    ]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(header)]
    for line in (header, *cells):
        print(
            "  ".join(
                text.rjust(width) if right else text.ljust(width)
                for text, width, right in zip(line, widths, numeric, strict=True)
            ).rstrip()
        )


def print_csv(rows: Sequence[object]) -> None:
    """Records (or dataclass rows) as CSV with a header; values as stored (timestamps in ns,
    null empty)."""
    header = _field_names(rows)
    if not header:
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if (v := getattr(row, name)) is None else v for name in header])


def _field_names(rows: Sequence[object]) -> list[str]:
    """The columns of a table of records (msgspec Structs) or of dataclass rows; none for
    anything else, or no rows."""
    if not rows:
        return []
    if isinstance(rows[0], msgspec.Struct):
        return list(rows[0].__struct_fields__)
    if dataclasses.is_dataclass(rows[0]):
        return [field.name for field in dataclasses.fields(rows[0])]
    return []


def _row_json(row: object) -> bytes:
    from marketstream.schemas.codec import encode_record  # noqa: PLC0415
    from marketstream.schemas.records import RECORD_CLASSES  # noqa: PLC0415

    return encode_record(row) if isinstance(row, RECORD_CLASSES) else orjson.dumps(row)


def _cell(name: str, value: object) -> str:
    from marketstream.query.hot_queries import format_ns  # noqa: PLC0415

    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if name in _TIMESTAMP_FIELDS and isinstance(value, int):
        return format_ns(value)
    return str(value)
