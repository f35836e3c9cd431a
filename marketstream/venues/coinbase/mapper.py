"""Coinbase Exchange: the pure frame mapper `(frame, recv_ts) -> items`.

Product ids (`BTC-USD`) are already normalized symbols, so the mapper needs no symbol table.
The book comes from the `level2_batch` channel: a `snapshot` after subscribing, then
`l2update` changes that carry no sequence numbers, so gaps cannot be detected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from marketstream.schemas.records import Level, Quote, Side, Trade
from marketstream.venues.base.mapper import (
    BookUpdate,
    FrameError,
    Item,
    frame_only,
    in_venue,
)
from marketstream.venues.base.parsing import (
    JsonObject,
    field,
    iso_time,
    iso_time_or,
    levels,
    load_object,
    number,
    one_of,
    optional_number,
    show,
    text,
)
from marketstream.venues.coinbase.symbols import NAME, native_symbol

# A match's `side` is the maker order's side; the taker, whose side a Trade records, took
# the other one.
_TAKER_SIDE: Final[Mapping[str, Side]] = MappingProxyType({"buy": "sell", "sell": "buy"})
_BOOK_SIDE: Final[Mapping[str, int]] = MappingProxyType({"buy": 0, "sell": 1})


_PLACEHOLDER_TIME: Final = "0001-01-01T00:00:00"


def _time(data: JsonObject, key: str, what: str, default: int | None = None) -> int:
    """An event time; `default` where the field may be absent. Coinbase writes the
    placeholder `0001-01-01T00:00:00Z` where it has no time: that is refused, not read as a
    year-1 timestamp that fits no int64 nanoseconds (nor is a receive time put in for it)."""
    ts = iso_time(data, key, what) if default is None else iso_time_or(data, key, what, default)
    if ts < 0:
        value = data[key]
        if str(value).startswith(_PLACEHOLDER_TIME):
            raise FrameError(
                f"{what}: {key} {show(value)} is Coinbase's placeholder for an unknown time, "
                "not an event time"
            )
        raise FrameError(f"{what}: {key} {show(value)} is before 1970, not an event time")
    return ts


def _trade(data: JsonObject, recv_ts: int) -> list[Item]:
    what = "match"
    taker_side = one_of(data, "side", what, _TAKER_SIDE, "'buy' or 'sell'")
    trade = Trade(
        NAME,
        text(data, "product_id", what),
        _time(data, "time", what),
        recv_ts,
        str(field(data, "trade_id", what)),
        number(data, "price", what),
        number(data, "size", what),
        taker_side,
    )
    return [trade]


def _ticker(data: JsonObject, recv_ts: int) -> list[Item]:
    """Sizes exist only in newer tickers; the first ticker after subscribing has no time."""
    what = "ticker"
    quote = Quote(
        NAME,
        text(data, "product_id", what),
        _time(data, "time", what, recv_ts),
        recv_ts,
        number(data, "best_bid", what),
        optional_number(data, "best_bid_size", what),
        number(data, "best_ask", what),
        optional_number(data, "best_ask_size", what),
        number(data, "price", what),
    )
    return [quote]


def _snapshot(data: JsonObject, recv_ts: int) -> list[Item]:
    what = "snapshot"
    update = BookUpdate(
        NAME,
        text(data, "product_id", what),
        _time(data, "time", what, recv_ts),
        recv_ts,
        levels(data, "bids", what),
        levels(data, "asks", what),
        is_snapshot=True,
    )
    return [update]


def _changes(data: JsonObject, what: str) -> tuple[list[Level], list[Level]]:
    """`[["buy", price, size], ["sell", ...]]` -> (bids, asks); size 0 removes the level."""
    changes = field(data, "changes", what)
    sides: tuple[list[Level], list[Level]] = ([], [])
    try:
        for side, price, size in changes:
            sides[_BOOK_SIDE[side]].append((float(price), float(size)))
    except (KeyError, TypeError, ValueError):
        raise FrameError(
            f"{what}: changes {show(changes)} is not a list of [side, price, size] "
            "with side 'buy' or 'sell' and decimal price and size"
        ) from None
    return sides


def _l2update(data: JsonObject, recv_ts: int) -> list[Item]:
    what = "l2update"
    bids, asks = _changes(data, what)
    update = BookUpdate(
        NAME,
        text(data, "product_id", what),
        _time(data, "time", what),
        recv_ts,
        bids,
        asks,
        is_snapshot=False,
    )
    return [update]


def _control(data: JsonObject, recv_ts: int) -> list[Item]:
    """Subscription confirmations and heartbeats: nothing to publish."""
    return []


def _error(data: JsonObject, recv_ts: int) -> list[Item]:
    raise FrameError(f"error: {data.get('message')} ({data.get('reason')})")


_HANDLERS: Final[Mapping[str, Callable[[JsonObject, int], list[Item]]]] = MappingProxyType(
    {
        "match": _trade,
        "last_match": _trade,  # the latest trade, sent once per product after subscribing
        "ticker": _ticker,
        "snapshot": _snapshot,
        "l2update": _l2update,
        "subscriptions": _control,
        "heartbeat": _control,
        "error": _error,
    }
)


def map_frame(frame: str | bytes, recv_ts: int) -> list[Item]:
    """The Coinbase mapper: it needs nothing but the frame, so one function serves all."""
    try:
        message = load_object(frame)
        kind = field(message, "type", "message")
        try:
            handler = _HANDLERS[kind]
        except (KeyError, TypeError):
            raise FrameError(f"unknown message type {show(kind)}") from None
        return handler(message, recv_ts)
    except FrameError as exc:
        raise in_venue(NAME, exc) from None


# The mapper needs nothing but the frame: it reads product ids as they come.
make_mapper: Final = frame_only(map_frame, native_symbol)
