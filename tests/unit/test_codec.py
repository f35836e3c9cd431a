"""Round trips of the JSON record encoding and the Redis stream entry layout."""

from __future__ import annotations

import msgspec.structs
import orjson
import pytest
from hypothesis import given

from marketstream.schemas.codec import (
    ENTRY_FIELD,
    DecodeError,
    decode_entry,
    decode_record,
    encode_entry,
    encode_record,
)
from marketstream.schemas.columns import spec_of
from marketstream.schemas.records import Book, Record, Trade
from tests.unit.strategies import records


@given(records)
def test_json_round_trip(record: Record) -> None:
    assert decode_record(encode_record(record)) == record


@given(records)
def test_stream_entry_round_trip(record: Record) -> None:
    entry = encode_entry(record)
    assert list(entry) == [ENTRY_FIELD]
    assert decode_entry(entry) == record


@given(records)
def test_json_has_type_first_then_fields_in_order(record: Record) -> None:
    obj = orjson.loads(encode_record(record))
    spec = spec_of(record)
    assert list(obj) == ["type", *spec.names]
    assert obj["type"] == spec.record_type


@given(records)
def test_values_are_those_orjson_writes_for_the_record(record: Record) -> None:
    """What the stream entry held before records were Structs (orjson's serialization of the
    record's fields, `type` first), read back: the same JSON values. Only the spelling of a
    float's exponent may differ (`1e+16` then, `1e16` now), which every JSON reader takes alike."""
    before = orjson.dumps({"type": spec_of(record).record_type, **msgspec.structs.asdict(record)})
    assert orjson.loads(encode_record(record)) == orjson.loads(before)


@pytest.mark.parametrize(
    ("value", "spelled"), [(1e16, b"1e16"), (2.5e-7, b"2.5e-7"), (65000.5, b"65000.5")]
)
def test_floats_are_spelled_as_documented(value: float, spelled: bytes) -> None:
    trade = Trade("binance", "BTC-USDT", 1, 2, "42", value, 1.0, "buy")
    assert b'"price":' + spelled + b"," in encode_record(trade)


def test_documented_trade_layout() -> None:
    trade = Trade("binance", "BTC-USDT", 1, 2, "42", 65000.5, 0.25, "buy")
    assert encode_record(trade) == (
        b'{"type":"trade","exchange":"binance","symbol":"BTC-USDT","ts":1,"recv_ts":2,'
        b'"trade_id":"42","price":65000.5,"size":0.25,"side":"buy"}'
    )


def test_book_levels_are_price_size_pairs() -> None:
    book = Book("coinbase", "BTC-USD", 1, 2, 7, [(10.0, 1.0), (9.5, 2.0)], [(10.5, 3.0)])
    obj = orjson.loads(encode_record(book))
    assert obj["bids"] == [[10.0, 1.0], [9.5, 2.0]]
    assert decode_record(encode_record(book)) == book


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"type": "tick"}', "type 'tick' is not one of"),
        (b'{"type": "trade", "price": 1}', "trade fields do not match"),
    ],
)
def test_decode_errors_say_what_was_expected(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_record(data)


def test_entry_without_data_field() -> None:
    with pytest.raises(DecodeError, match="no field 'd'"):
        decode_entry({b"x": b"{}"})
