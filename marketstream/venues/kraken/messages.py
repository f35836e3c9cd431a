"""Kraken's WebSocket v2 data messages as msgspec Structs, decoded in one C pass.

Only the fields the mapper reads are declared. Decoding is lax (`strict=False`): prices and
sizes (JSON numbers) become floats in C; times and ids stay as sent (`Any`): the mapper
checks them itself. Book levels keep each number's exact text (`msgspec.Raw`), which the
checksum is computed over (a float cannot give back "0.10000000"). A message these types
refuse, the v1 arrays and the answers to requests are read as JSON.
"""

from __future__ import annotations

from typing import Any

import msgspec

NO_DATA = msgspec.Raw(b"null")


class Push(msgspec.Struct):
    """A v2 channel message; `data` is decoded once `channel` says what it holds (heartbeats
    and the status carry none the mapper reads)."""

    channel: str
    data: msgspec.Raw = NO_DATA
    type: Any = None


class Trade(msgspec.Struct):
    symbol: str
    side: str  # the taker's
    price: float
    qty: float
    trade_id: Any  # published as text
    timestamp: Any  # ISO-8601 UTC


class Ticker(msgspec.Struct):
    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    last: float | None = None
    timestamp: Any = msgspec.UNSET  # older tickers have none


class Ohlc(msgspec.Struct):
    symbol: str
    interval: Any  # minutes, an integer
    interval_begin: Any  # ISO-8601 UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: Any  # an integer


class Level(msgspec.Struct):
    """A book level's numbers as their exact JSON text."""

    price: msgspec.Raw
    qty: msgspec.Raw


class Book(msgspec.Struct):
    symbol: str
    bids: list[Level]
    asks: list[Level]
    checksum: Any = None  # an unsigned 32-bit integer
    timestamp: Any = msgspec.UNSET  # snapshots have none
