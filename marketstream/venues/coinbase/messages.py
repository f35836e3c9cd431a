"""Coinbase Exchange's feed messages as msgspec Structs, told apart by their `type` tag.

Only the fields the mapper reads are declared. Decoding is lax (`strict=False`): the decimal
strings Coinbase sends become floats in C. Times stay text: they are read to exact
nanoseconds by `iso_to_ns`. Control messages (subscriptions, heartbeats, errors) are not
here: the mapper reads those rare ones as plain JSON.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Side = Literal["buy", "sell"]


class L2Update(msgspec.Struct, tag_field="type", tag="l2update"):
    product_id: str
    changes: list[tuple[Side, float, float]]  # [side, price, size]; size 0 removes the level
    time: str


class Snapshot(msgspec.Struct, tag_field="type", tag="snapshot"):
    product_id: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    time: str | None = None


class Match(msgspec.Struct, tag_field="type", tag="match"):
    product_id: str
    time: str
    trade_id: int | str
    price: float
    size: float
    side: Side  # the maker order's side


class LastMatch(Match, tag="last_match"):
    """The latest trade, sent once per product after subscribing."""


class Ticker(msgspec.Struct, tag_field="type", tag="ticker"):
    product_id: str
    best_bid: float
    best_ask: float
    price: float
    time: str | None = None  # the first ticker after subscribing has none
    best_bid_size: float | None = None  # newer tickers only
    best_ask_size: float | None = None


Message = L2Update | Snapshot | Match | LastMatch | Ticker
TAGS = frozenset(("l2update", "snapshot", "match", "last_match", "ticker"))
