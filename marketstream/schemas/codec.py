"""Records to and from JSON: the Redis stream entry and the `normalize` output share it.

A record encodes as one JSON object whose first key is `type` (trade, quote, candle, book,
funding) followed by the record's fields in order; order book sides are `[[price, size], ...]`
best first; optional values are `null`. A Redis stream entry holds that object in its single
field `d`, so `XREAD` shows readable JSON and decoding is one orjson call.

msgspec writes it from the record Struct in one C call (the tag is `type`). The bytes are
those orjson wrote before, but for a float's exponent: `1e16`, where orjson wrote `1e+16`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
import orjson

from marketstream.schemas.columns import SPEC_BY_TYPE, TableSpec
from marketstream.schemas.records import Book, Record

ENTRY_FIELD: Final = b"d"


_ENCODE: Final = msgspec.json.Encoder().encode


class DecodeError(ValueError):
    """Bytes that are not an encoded record; the message says what was expected."""


def encode_record(record: Record) -> bytes:
    """Compact JSON with `type` first, then the record's fields in order."""
    return _ENCODE(record)


def decode_record(data: bytes | str) -> Record:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
    return record_from_dict(obj)


def record_from_dict(obj: dict[str, Any]) -> Record:
    """Build a record from its decoded JSON object (the `type` key selects the class)."""
    record_type = obj.pop("type", None)
    spec: TableSpec | None = SPEC_BY_TYPE.get(record_type) if isinstance(record_type, str) else None
    if spec is None:
        raise DecodeError(f"type {record_type!r} is not one of {sorted(SPEC_BY_TYPE)}")
    if spec.cls is Book:
        for side in ("bids", "asks"):
            if side in obj:
                obj[side] = [(price, size) for price, size in obj[side]]
    try:
        return spec.cls(**obj)
    except TypeError as exc:
        raise DecodeError(f"{record_type} fields do not match {list(spec.names)}: {exc}") from None


def encode_entry(record: Record) -> dict[bytes, bytes]:
    """The field map for XADD."""
    return {ENTRY_FIELD: encode_record(record)}


def decode_entry(fields: Mapping[bytes, bytes]) -> Record:
    """A record from the field map XREAD/XREADGROUP returned."""
    data = fields.get(ENTRY_FIELD)
    if data is None:
        raise DecodeError(f"stream entry has no field {ENTRY_FIELD.decode()!r}: {sorted(fields)}")
    return decode_record(data)
