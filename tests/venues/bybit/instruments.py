"""Bybit instruments for the venue tests: the four real v5 records ccxt ships (parsed by our
parser) and, for the other symbols the tests use, records written as Bybit lists them (spot
and linear sizes in coins, inverse contracts of 1 USD)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from marketstream.schemas.records import Instrument, InstrumentKind
from marketstream.venues.bybit.instruments import parse_instruments

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"
READ_TS = 1_680_000_000_000_000_000


def _body(category: str, records: list[object]) -> bytes:
    """A whole instruments-info answer around records (the capture holds records only)."""
    result = {"category": category, "list": records, "nextPageCursor": ""}
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": result, "time": 1})


def captured_records() -> list[tuple[str, str, dict[str, object]]]:
    """(URL, category, record) of the four real records of bybit-instruments-v5-records.jsonl
    (spot BTCUSDT, linear BTCUSDT and ZRXUSDT, inverse BTCUSD)."""
    found = []
    for line in (CAPTURES / "bybit-instruments-v5-records.jsonl").read_bytes().splitlines():
        recorded = orjson.loads(line)
        url = recorded["url"]
        category = url.split("category=")[1].split("&")[0]
        found.append((url, category, orjson.loads(recorded["frame"])))
    return found


def captured() -> list[Instrument]:
    """The four real records, each parsed in its own answer."""
    found: list[Instrument] = []
    for url, category, record in captured_records():
        found.extend(parse_instruments(url, _body(category, [record]), READ_TS))
    return found


def _ms(day: str) -> int:
    """A Bybit delivery time: 08:00 UTC of the day."""
    return int(datetime.strptime(day, "%Y%m%d").replace(hour=8, tzinfo=UTC).timestamp()) * 1000


def made(
    symbol: str, native: str, kind: InstrumentKind, expiry_day: str | None = None
) -> Instrument:
    base, quote = symbol.split("-")[:2]
    settle = base if kind.startswith("inverse") else quote
    expiry = _ms(expiry_day) * 1_000_000 if expiry_day else None
    return Instrument(
        "bybit", symbol, READ_TS, native, kind, base, quote, settle, 1.0, 1.0, 0.01, 0.001,
        expiry, "trading",
    )  # fmt: skip


INSTRUMENTS: tuple[Instrument, ...] = (
    *captured(),
    made("ETH-USDT", "ETHUSDT", "spot"),
    made("SOL-USDT", "SOLUSDT", "spot"),
    made("BTC-USDC", "BTCUSDC", "spot"),
    made("ETH-USDT-PERP", "ETHUSDT", "linear_perpetual"),
    made("SOL-USDT-PERP", "SOLUSDT", "linear_perpetual"),
    made("1000PEPE-USDT-PERP", "1000PEPEUSDT", "linear_perpetual"),
    made("ETH-USDC-PERP", "ETHPERP", "linear_perpetual"),
    made("BTC-USDC-PERP", "BTCPERP", "linear_perpetual"),
    made("LTC-USDT-PERP", "LTCUSDT", "linear_perpetual"),
    made("GALA-USDT-PERP", "GALAUSDT", "linear_perpetual"),
    made("PIPPIN-USDT-PERP", "PIPPINUSDT", "linear_perpetual"),
    made("BTC-USDT-20251226", "BTCUSDT-26DEC25", "linear_future", "20251226"),
    made("BTC-USDC-20251226", "BTC-26DEC25", "linear_future", "20251226"),
    made("XRP-USD-PERP", "XRPUSD", "inverse_perpetual"),
    made("BTC-USD-20230929", "BTCUSDU23", "inverse_future", "20230929"),
)
