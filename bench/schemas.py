"""Per-record cost of the schema layer on the ingest hot path: validate, encode, decode, Arrow."""

from __future__ import annotations

from typing import Any

from bench.timing import per_second
from marketstream.schemas.arrow import to_arrow
from marketstream.schemas.codec import decode_record, encode_entry, encode_record
from marketstream.schemas.columns import SPEC_BY_CLASS, TableSpec
from marketstream.schemas.records import Book, Candle, Quote, Record, Trade
from marketstream.schemas.validation import Limits, validate

NOW = 1_732_180_000_000_000_000
BATCH = 1000


def _samples() -> dict[str, list[Record]]:
    trades: list[Record] = [
        Trade("binance", "BTC-USDT", NOW + i, NOW + i + 5, str(i), 97000.0 + i % 7, 0.01, "buy")
        for i in range(BATCH)
    ]
    quotes: list[Record] = [
        Quote("binance", "BTC-USDT", NOW + i, NOW + i + 5, 97000.0, 1.5, 97000.1, 2.5)
        for i in range(BATCH)
    ]
    candles: list[Record] = [
        Candle("binance", "BTC-USDT", "1m", NOW + i, 1.0, 2.0, 0.5, 1.5, 10.0, 3, True)
        for i in range(BATCH)
    ]
    levels = 25
    books: list[Record] = [
        Book(
            "binance",
            "BTC-USDT",
            NOW + i,
            NOW + i,
            i,
            [(97000.0 - k, 1.0 + k) for k in range(levels)],
            [(97001.0 + k, 1.0 + k) for k in range(levels)],
        )
        for i in range(BATCH)
    ]
    return {"trade": trades, "quote": quotes, "candle": candles, "book25": books}


def run() -> dict[str, Any]:
    limits = Limits(now_ns=NOW + 10**12, max_future_skew_ns=5 * 10**9)
    results: dict[str, Any] = {}
    for name, records in _samples().items():
        encoded = [encode_record(r) for r in records]
        spec = SPEC_BY_CLASS[type(records[0])]

        def validate_all(records: list[Record] = records) -> int:
            for record in records:
                validate(record, limits)
            return len(records)

        def encode_all(records: list[Record] = records) -> int:
            for record in records:
                encode_entry(record)
            return len(records)

        def decode_all(encoded: list[bytes] = encoded) -> int:
            for data in encoded:
                decode_record(data)
            return len(encoded)

        def arrow_all(records: list[Record] = records, spec: TableSpec = spec) -> int:
            to_arrow(spec, records)
            return len(records)

        figures = {
            "validate_per_s": round(per_second(validate_all)),
            "encode_entry_per_s": round(per_second(encode_all)),
            "decode_per_s": round(per_second(decode_all)),
            "to_arrow_per_s": round(per_second(arrow_all)),
            "encoded_bytes": len(encoded[0]),
        }
        results[name] = figures
        print(
            f"  {name:7s} validate {figures['validate_per_s']:>10,}/s  "
            f"encode {figures['encode_entry_per_s']:>10,}/s  "
            f"decode {figures['decode_per_s']:>10,}/s  "
            f"arrow {figures['to_arrow_per_s']:>10,}/s  "
            f"({figures['encoded_bytes']} B/record)"
        )
    return results
