"""Bybit's push payloads as msgspec Structs, decoded in one C pass.

Only the fields the mapper reads are declared. Decoding is lax (`strict=False`): Bybit's
decimal strings become floats in C, book levels `[price, size]` float pairs. Times, sides,
ids, update ids and flags stay as sent (`Any`, `str`): the mapper checks them itself, with
the messages it always gave. A payload these types refuse is read as JSON instead, where the
mapper names what is wrong with it; the legacy `liquidation` topic is read as JSON only.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Push(msgspec.Struct):
    """A topic push; `data` is decoded once the topic says what it holds. `cts` stays UNSET
    where the push has none: then the book's time is `ts`."""

    topic: str
    data: msgspec.Raw
    type: Any = None
    ts: Any = None
    cts: Any = msgspec.UNSET


class Trade(msgspec.Struct):
    S: str  # the taker's side, "Buy" or "Sell"
    p: float
    v: float
    T: Any  # milliseconds, an integer
    i: Any  # the id, published as text


class Book(msgspec.Struct):
    """`orderbook.<depth>` data: a snapshot or delta of the levels, numbered by `u`."""

    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    u: Any  # an integer


class Kline(msgspec.Struct):
    start: Any  # milliseconds, an integer
    interval: Any  # Bybit's interval name, e.g. "1"
    open: float
    high: float
    low: float
    close: float
    volume: float
    confirm: Any  # true or false
    turnover: float | None = None  # read for inverse klines only


class Ticker(msgspec.Struct):
    """A snapshot has every field, a delta those that changed; an empty value (`""`, a dated
    future's funding rate) is refused here and read as JSON."""

    fundingRate: float | None = None  # noqa: N815  (Bybit's names)
    markPrice: float | None = None  # noqa: N815
    indexPrice: float | None = None  # noqa: N815
    nextFundingTime: Any = None  # noqa: N815  milliseconds as a decimal string
    openInterest: float | None = None  # noqa: N815
    openInterestValue: float | None = None  # noqa: N815


class Liquidation(msgspec.Struct):
    """An `allLiquidation` entry; `S` is the side of the liquidated position."""

    T: Any  # milliseconds, an integer
    S: str
    v: float
    p: float
