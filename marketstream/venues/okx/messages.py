"""OKX's hot push payloads (trades, tickers) as msgspec Structs, decoded in one C pass.

Only the fields the mapper reads are declared, in the order it reads them, so a payload
missing several names the same one as before. Decoding is lax (`strict=False`): OKX's decimal
strings become floats in C. Times and sides stay as sent (`Any`, `str`): the mapper checks
them itself, with the messages it always gave. The rest of the feed (books, whose checksum
needs the levels' text, candles, funding, open interest, liquidations) is read as JSON.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Arg(msgspec.Struct):
    channel: str
    instId: str  # noqa: N815  (OKX's name)


class Push(msgspec.Struct):
    """A channel push; `data` is decoded once `arg.channel` says what it holds."""

    arg: Arg
    data: msgspec.Raw


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
