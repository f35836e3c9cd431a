"""The normalized records. Their fields are the one definition of every tier's columns.

Each field's `Annotated` kind tells the tiers how to store it (see `columns.py`). Records are
msgspec Structs tagged by their `type`: built in C (a quarter of a slotted dataclass's time,
once per record on the ingest hot path) and encoded in C with `type` first (`codec.py`).
Like the dataclasses they were, they check no types when built: validation does that.
Timestamps are int nanoseconds since the epoch (UTC); prices and sizes float64.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Final, Literal

import msgspec


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


class Stamped(msgspec.Struct, tag_field="type", gc=False):
    """What every record but `Candle` (whose `interval` comes before `ts`) starts with: the
    exchange, the instrument and the time (ns) the values are of.

    Subclasses add their fields after these, so the columns keep this order everywhere.
    """

    exchange: Sym
    symbol: Sym
    ts: Nanos


class Event(Stamped):
    """A record received as an event: the stamp, then the receive time."""

    recv_ts: Nanos


class Trade(Event, tag="trade"):
    """One executed trade; `side` is the taker's side, `size` in base-asset units."""

    trade_id: Text
    price: Num
    size: Num
    side: SideSym


class Quote(Event, tag="quote"):
    """Best bid and offer (top of book).

    Sizes are None where the feed sends prices only (Coinbase's ticker before 2022) rather
    than a made-up size; `last_px` is the last trade price when the feed sends it.
    """

    bid_px: Num
    bid_sz: OptNum
    ask_px: Num
    ask_sz: OptNum
    last_px: OptNum = None


class Candle(msgspec.Struct, tag_field="type", tag="candle", gc=False):
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


class Book(Event, tag="book"):
    """Top-N order book levels, best first; `seq` is the exchange's last applied update id."""

    seq: Count
    bids: Levels
    asks: Levels
    is_snapshot: Flag = True


class Funding(Stamped, tag="funding"):
    """Perpetual swap funding: current rate, mark and index price, next funding time."""

    rate: Num
    mark_px: OptNum = None
    index_px: OptNum = None
    next_ts: OptNanos = None


class Liquidation(Event, tag="liquidation"):
    """A forced close by the exchange; `side` is the liquidation order's side (a long position
    liquidated sells), `size` in base-asset units."""

    side: SideSym
    price: Num
    size: Num


class OpenInterest(Event, tag="open_interest"):
    """Open contracts of a derivative, in base-asset units; `value` in the quote currency
    where the exchange sends it."""

    open_interest: Num
    value: OptNum = None


class Price(Event, tag="price"):
    """A polled REST source's price of a token, in USD (`exchange` holds the source's name).

    `ts` is the tick the poll belongs to (the scheduled second, not the answer's time), so a
    retried or hedged request for the same tick upserts one row and a missed tick is a missing
    row. `source_ts` is the time the source says its price is of (Birdeye), `block` the chain
    slot it was computed at (Jupiter); `liquidity` in USD; `change_24h` in percent.
    """

    price: Num
    source_ts: OptNanos = None
    block: OptCount = None
    liquidity: OptNum = None
    change_24h: OptNum = None


# What an instrument is: spot, or a perpetual or dated future whose contracts are linear
# (a contract is `contract_value` base units) or inverse (a contract is `contract_value`
# quote units, so its base size depends on the price).
InstrumentKind = Literal[
    "spot", "linear_perpetual", "inverse_perpetual", "linear_future", "inverse_future"
]
INVERSE_KINDS: Final = frozenset({"inverse_perpetual", "inverse_future"})
KindSym = Annotated[InstrumentKind, Kind.SYMBOL]


class Instrument(Stamped, tag="instrument"):
    """One exchange instrument as its metadata describes it, as of `ts`.

    `contract_value * contract_multiplier` is what one unit of the exchange's size field is
    worth: base units for spot and linear contracts, quote units for inverse ones (the
    mappers' `SizeRule`, `venues/base/contracts.py`, turns it into base units). Tick and lot
    size are in the exchange's own price and size units; `ts` is the time the metadata was
    read.
    """

    native_symbol: Sym
    kind: KindSym
    base: Sym
    quote: Sym
    settle: Sym
    contract_value: Num
    contract_multiplier: Num
    tick_size: Num
    lot_size: Num
    expiry: OptNanos
    status: Sym


Record = Trade | Quote | Candle | Book | Funding | Liquidation | OpenInterest | Instrument | Price
RECORD_CLASSES: tuple[type[Record], ...] = (
    Trade,
    Quote,
    Candle,
    Book,
    Funding,
    Liquidation,
    OpenInterest,
    Instrument,
    Price,
)
