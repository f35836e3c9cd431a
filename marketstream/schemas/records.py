"""The five normalized records. Their fields are the one definition of every tier's columns.

Each field's `Annotated` kind tells the tiers how to store it (see `columns.py`); plain
slotted dataclasses keep construction cheap on the ingest hot path and serialize with orjson
as they are. Timestamps are int nanoseconds since the epoch (UTC); prices and sizes float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Literal


class Kind(Enum):
    """How a column is stored; each tier maps a kind to its own type."""

    SYMBOL = "symbol"  # a short, repeated name: exchange, symbol, side, interval
    TEXT = "text"  # a free string: trade ids
    TIMESTAMP = "timestamp"  # int nanoseconds since the epoch, UTC
    FLOAT = "float"  # float64 price, size, rate
    INT = "int"  # int64 sequence number or count
    BOOL = "bool"
    LEVELS = "levels"  # an order book side, best first: [(price, size), ...]


Side = Literal["buy", "sell"]
Level = tuple[float, float]

Sym = Annotated[str, Kind.SYMBOL]
Text = Annotated[str, Kind.TEXT]
Nanos = Annotated[int, Kind.TIMESTAMP]
OptNanos = Annotated[int | None, Kind.TIMESTAMP]
Num = Annotated[float, Kind.FLOAT]
OptNum = Annotated[float | None, Kind.FLOAT]
Count = Annotated[int, Kind.INT]
OptCount = Annotated[int | None, Kind.INT]
Flag = Annotated[bool, Kind.BOOL]
Levels = Annotated[list[Level], Kind.LEVELS]
SideSym = Annotated[Side, Kind.SYMBOL]


@dataclass(slots=True)
class Trade:
    """One executed trade; `side` is the taker's side."""

    exchange: Sym
    symbol: Sym
    ts: Nanos
    recv_ts: Nanos
    trade_id: Text
    price: Num
    size: Num
    side: SideSym


@dataclass(slots=True)
class Quote:
    """Best bid and offer (top of book).

    Sizes are None where the feed sends prices only (Coinbase's ticker before 2022) rather
    than a made-up size; `last_px` is the last trade price when the feed sends it.
    """

    exchange: Sym
    symbol: Sym
    ts: Nanos
    recv_ts: Nanos
    bid_px: Num
    bid_sz: OptNum
    ask_px: Num
    ask_sz: OptNum
    last_px: OptNum = None


@dataclass(slots=True)
class Candle:
    """OHLCV bar; `ts` is the open time, `closed` false while the bar is still forming."""

    exchange: Sym
    symbol: Sym
    interval: Sym
    ts: Nanos
    open: Num
    high: Num
    low: Num
    close: Num
    volume: Num
    trades: OptCount = None
    closed: Flag = False


@dataclass(slots=True)
class Book:
    """Top-N order book levels, best first; `seq` is the exchange's last applied update id."""

    exchange: Sym
    symbol: Sym
    ts: Nanos
    recv_ts: Nanos
    seq: Count
    bids: Levels
    asks: Levels
    is_snapshot: Flag = True


@dataclass(slots=True)
class Funding:
    """Perpetual swap funding: current rate, mark and index price, next funding time."""

    exchange: Sym
    symbol: Sym
    ts: Nanos
    rate: Num
    mark_px: OptNum = None
    index_px: OptNum = None
    next_ts: OptNanos = None


Record = Trade | Quote | Candle | Book | Funding
RECORD_CLASSES: tuple[type[Record], ...] = (Trade, Quote, Candle, Book, Funding)
