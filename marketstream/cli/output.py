"""How commands print: one JSON document, records as JSON lines or an aligned table, and the
services' status lines."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from marketstream.services.state import ServicesStatus

ROW_FORMATS = ("json", "table")
_TIMESTAMP_FIELDS = frozenset({"ts", "recv_ts", "next_ts", "expiry"})


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
    if not rows or not dataclasses.is_dataclass(rows[0]):
        return
    header = [field.name for field in dataclasses.fields(rows[0])]
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
