"""OKX's push payloads as msgspec Structs, decoded in one C pass.

Only the fields the mapper reads are declared, in the order it reads them, so a payload
missing several names the same one as before. Decoding is lax (`strict=False`): OKX's decimal
strings become floats in C. Times and sides stay as sent (`Any`, `str`): the mapper checks
them itself, with the messages it always gave. Book levels and candle rows are decoded as
their strings: the checksum needs the levels' text, and a candle's numbers must be strings
(as the JSON path requires); the mapper converts them. A payload these types refuse is read
as JSON, where the mapper names what is wrong.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Arg(msgspec.Struct):
    channel: str
    # OKX's name; "" where the arg has none (liquidations are subscribed by instType): the
    # channels read by instId send such a push to the JSON path, which names what is missing.
    instId: str = ""  # noqa: N815


class Push(msgspec.Struct):
    """A channel push; `data` is decoded once `arg.channel` says what it holds. `action`
    (books): "snapshot" or "update"."""

    arg: Arg
    data: msgspec.Raw
    action: Any = None


class Trade(msgspec.Struct):
    side: str
    px: float
    sz: float
    ts: Any  # milliseconds as a decimal string
    tradeId: str  # noqa: N815


class Ticker(msgspec.Struct):
    bidPx: float  # noqa: N815
    bidSz: float  # noqa: N815
    askPx: float  # noqa: N815
    askSz: float  # noqa: N815
    ts: Any
    last: float


class BookItem(msgspec.Struct):
    """One book push item: levels `[price, size, liquidated orders, orders]` as sent."""

    asks: list[list[str]]
    bids: list[list[str]]
    ts: Any  # milliseconds as a decimal string
    checksum: Any = None  # a signed 32-bit integer; 0 or missing: none
    prevSeqId: Any = None  # noqa: N815
    seqId: Any = None  # noqa: N815


# A candle row `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]` (7 fields before 2022).
CandleRow = list[str]


class Funding(msgspec.Struct):
    """Values as sent: an empty rate or settlement time means none; `ts` may be missing."""

    fundingRate: Any = None  # noqa: N815
    fundingTime: Any = None  # noqa: N815
    ts: Any = msgspec.UNSET


class OpenInterest(msgspec.Struct):
    oi: Any
    ts: Any
    oiCcy: Any = None  # noqa: N815
    oiUsd: Any = None  # noqa: N815


class Liquidated(msgspec.Struct):
    bkPx: float  # noqa: N815
    ts: Any
    side: str
    sz: float


class Liquidations(msgspec.Struct):
    """A `liquidation-orders` item: one instId's liquidations."""

    instId: str  # noqa: N815
    details: list[Liquidated]
