"""The columnar ILP path (`Sender.dataframe`) writes exactly what the client's row API does,
and stream entries decode straight into structs that carry every field of the record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec.structs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from questdb import TimestampNanos
from questdb._client import Buffer  # the public name is deprecated (questdb.ingress)

from marketstream.schemas.codec import DecodeError, encode_entry, encode_record
from marketstream.schemas.columns import levels_to_rows, spec_of
from marketstream.schemas.entry_structs import decode_entry_data, decode_entry_fields
from marketstream.schemas.records import Kind, Record, Trade
from marketstream.tiers.questdb_rows import write_rows
from tests.unit.strategies import records

ILP_PROTOCOL = 2  # the hot writer's: binary doubles and arrays


def _row_by_row(records_in_order: Sequence[Record]) -> bytes:
    """The oracle: one `Buffer.row` per record, None values left out (NULL)."""
    buffer = Buffer(protocol_version=ILP_PROTOCOL)
    for record in records_in_order:
        spec = spec_of(record)
        symbols: dict[str, str | None] = {}
        columns: dict[str, Any] = {}
        for column in spec.columns:
            value = getattr(record, column.name)
            if column.kind is Kind.SYMBOL:
                symbols[column.name] = value
            elif column.name == spec.timestamp or value is None:
                continue
            elif column.kind is Kind.TIMESTAMP:
                columns[column.name] = TimestampNanos(value)
            elif column.kind is Kind.LEVELS:
                rows = levels_to_rows(value) if value else [[], []]
                columns[column.name] = np.array(rows, dtype=np.float64).reshape(2, -1)
            else:
                columns[column.name] = value
        at = TimestampNanos(getattr(record, spec.timestamp))
        buffer.row(spec.table, symbols=symbols, columns=columns, at=at)
    return bytes(buffer)


def _grouped(mixed: list[Record]) -> list[Record]:
    """The order write_rows buffers in: per table, tables in order of first appearance."""
    tables = list(dict.fromkeys(spec_of(r).table for r in mixed))
    return [r for table in tables for r in mixed if spec_of(r).table == table]


@settings(max_examples=150, deadline=None)  # the first frame imports pandas
@given(st.lists(records, min_size=1, max_size=12))
def test_the_columnar_path_writes_what_rows_would(mixed: list[Record]) -> None:
    expected = _row_by_row(_grouped(mixed))
    from_records = Buffer(protocol_version=ILP_PROTOCOL)
    assert write_rows(from_records, mixed) == len(mixed)  # type: ignore[arg-type]
    from_entries = Buffer(protocol_version=ILP_PROTOCOL)
    decoded = [decode_entry_data(encode_record(r)) for r in mixed]
    write_rows(from_entries, decoded)  # type: ignore[arg-type]
    assert bytes(from_records) == expected
    assert bytes(from_entries) == expected


def test_a_value_that_does_not_fit_its_column_adds_nothing() -> None:
    buffer = Buffer(protocol_version=ILP_PROTOCOL)
    good = Trade("binance", "BTC-USDT", 1, 2, "1", 1.0, 1.0, "buy")
    write_rows(buffer, [good])  # type: ignore[arg-type]
    before = bytes(buffer)
    too_late = msgspec.structs.replace(good, ts=2**63)  # beyond int64 nanoseconds
    with pytest.raises((OverflowError, ValueError)):
        write_rows(buffer, [good, too_late])  # type: ignore[arg-type]
    assert bytes(buffer) == before


@given(records)
def test_an_entry_decodes_into_a_struct_with_every_field(record: Record) -> None:
    decoded = decode_entry_fields(encode_entry(record))
    for field in msgspec.structs.fields(record):
        value = getattr(record, field.name)
        got = getattr(decoded, field.name)
        assert got == value
        assert type(got) is type(value) or (isinstance(value, list) and isinstance(got, list))


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"{not json", "malformed"),
        (b'{"type":"candle","exchange":"x"}', "missing required field"),
        (b'{"type":"nope","exchange":"x"}', "nope"),
        (b'{"exchange":"x"}', "type"),
        (b'{"type":"trade","exchange":"x","symbol":"Y","ts":"soon","recv_ts":1,'
         b'"trade_id":"1","price":1.0,"size":1.0,"side":"buy"}', "ts"),
        (b"[1]", "object"),
    ],
)  # fmt: skip
def test_what_is_not_a_record_says_why(data: bytes, says: str) -> None:
    with pytest.raises(DecodeError, match=says):
        decode_entry_data(data)


def test_an_entry_without_the_d_field_says_so() -> None:
    with pytest.raises(DecodeError, match="no field 'd'"):
        decode_entry_fields({b"x": b"1"})
