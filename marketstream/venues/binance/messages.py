"""Binance's stream messages as msgspec Structs: a frame decodes into them in one C pass.

Only the fields the mapper reads are declared; msgspec skips the rest. Decoding is lax
(`strict=False`) so that the decimal strings Binance sends for prices and sizes become floats
in C; a field of the wrong kind, or missing, is a `msgspec.ValidationError` naming its path,
which the mapper turns into a FrameError. Events are told apart by their `e` tag; the spot
`bookTicker` has none and is told by its stream name (`<symbol>@bookTicker`).
"""

from __future__ import annotations

from typing import Literal

import msgspec


class SpotBookTicker(msgspec.Struct):
    """Spot's bookTicker: no event type, no time at all."""

    s: str
    b: float
    B: float
    a: float
    A: float
    T: int | None = None
    E: int | None = None


class BookTicker(SpotBookTicker, tag_field="e", tag="bookTicker"):
    """USD-M's bookTicker: the spot fields, tagged by its event type, with its times."""


class AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade"):
    # In the order they are read, so a frame missing several names the one read first.
    s: str
    T: int
    p: float
    q: float
    a: int | str  # the id, published as text
    m: bool  # the buyer is the maker: the taker sold


class RawTrade(msgspec.Struct, tag_field="e", tag="trade"):
    s: str
    T: int
    p: float
    q: float
    t: int | str
    m: bool


class KlineBar(msgspec.Struct):
    t: int
    i: str
    o: float
    h: float
    l: float  # noqa: E741  (Binance's name)
    c: float
    v: float
    n: int
    x: bool


class Kline(msgspec.Struct, tag_field="e", tag="kline"):
    s: str
    k: KlineBar


class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    s: str
    E: int
    U: int
    u: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    T: int | None = None
    pu: int | None = None  # USD-M only; required there (the mapper checks)


class MarkPrice(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    s: str
    E: int
    r: float
    p: float
    i: float
    T: int  # the next funding time; 0 for a dated contract


class ForceOrderBody(msgspec.Struct):
    s: str
    S: Literal["BUY", "SELL"]
    z: float  # accumulated filled quantity
    l: float  # noqa: E741  (the last fill)
    ap: float  # average fill price
    T: int


class ForceOrder(msgspec.Struct, tag_field="e", tag="forceOrder"):
    o: ForceOrderBody


SpotEvent = AggTrade | RawTrade | Kline | DepthUpdate | BookTicker
UsdmEvent = AggTrade | RawTrade | BookTicker | Kline | DepthUpdate | MarkPrice | ForceOrder

SPOT_TAGS = frozenset(("aggTrade", "trade", "kline", "depthUpdate", "bookTicker"))
USDM_TAGS = frozenset((*SPOT_TAGS, "markPriceUpdate", "forceOrder"))


class UsdmCombined(msgspec.Struct):
    """A USD-M frame from the combined-stream endpoint: every event carries its tag."""

    stream: str
    data: UsdmEvent


class SpotCombined(msgspec.Struct):
    """A spot frame from the combined-stream endpoint, its payload decoded once the stream
    name says what it is."""

    stream: str
    data: msgspec.Raw
