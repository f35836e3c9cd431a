"""Coinbase Exchange: the pure frame mapper `(frame, recv_ts) -> items`.

Product ids (`BTC-USD`) are already normalized symbols, so the mapper needs no symbol table.
The book comes from the `level2_batch` channel: a `snapshot` after subscribing, then
`l2update` changes that carry no sequence numbers, so gaps cannot be detected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec

from marketstream.schemas.records import Level, Quote, Trade
from marketstream.venues.base.mapper import (
    BookUpdate,
    FrameError,
    Item,
    frame_only,
    in_venue,
)
from marketstream.venues.base.parsing import converted, field, iso_to_ns, load_object, show
from marketstream.venues.coinbase.messages import (
    TAGS,
    L2Update,
    LastMatch,
    Match,
    Message,
    Snapshot,
    Ticker,
)
from marketstream.venues.coinbase.symbols import NAME, native_symbol

_PLACEHOLDER_TIME: Final = "0001-01-01T00:00:00"


_FRAME: Final = msgspec.json.Decoder(Message, strict=False)
_NOT_DECODED: Final = (msgspec.ValidationError, msgspec.DecodeError)


def _time(value: str | None, key: str, what: str, default: int | None = None) -> int:
    """An event time; `default` where the field may be absent. Coinbase writes the
    placeholder `0001-01-01T00:00:00Z` where it has no time: that is refused, not read as a
    year-1 timestamp that fits no int64 nanoseconds (nor is a receive time put in for it)."""
    if value is None:
        if default is None:
            raise FrameError(f"{what}: field {key!r} is missing")
        return default
    try:
        ts = iso_to_ns(value)
    except (AttributeError, TypeError, ValueError):
        raise FrameError(f"{what}: {key} {show(value)} is not an ISO-8601 UTC time") from None
    if ts < 0:
        if value.startswith(_PLACEHOLDER_TIME):
            raise FrameError(
                f"{what}: {key} {show(value)} is Coinbase's placeholder for an unknown time, "
                "not an event time"
            )
        raise FrameError(f"{what}: {key} {show(value)} is before 1970, not an event time")
    return ts


def _trade(m: Match, recv_ts: int) -> list[Item]:
    trade = Trade(
        NAME,
        m.product_id,
        _time(m.time, "time", "match"),
        recv_ts,
        str(m.trade_id),
        m.price,
        m.size,
        "sell" if m.side == "buy" else "buy",  # the maker's side: the taker took the other
    )
    return [trade]


def _ticker(t: Ticker, recv_ts: int) -> list[Item]:
    """Sizes exist only in newer tickers; the first ticker after subscribing has no time."""
    quote = Quote(
        NAME,
        t.product_id,
        _time(t.time, "time", "ticker", recv_ts),
        recv_ts,
        t.best_bid,
        t.best_bid_size,
        t.best_ask,
        t.best_ask_size,
        t.price,
    )
    return [quote]


def _snapshot(s: Snapshot, recv_ts: int) -> list[Item]:
    update = BookUpdate(
        NAME,
        s.product_id,
        _time(s.time, "time", "snapshot", recv_ts),
        recv_ts,
        s.bids,
        s.asks,
        is_snapshot=True,
    )
    return [update]


def _l2update(u: L2Update, recv_ts: int) -> list[Item]:
    bids: list[Level] = []
    asks: list[Level] = []
    for side, price, size in u.changes:
        (bids if side == "buy" else asks).append((price, size))
    update = BookUpdate(
        NAME, u.product_id, _time(u.time, "time", "l2update"), recv_ts, bids, asks, False
    )
    return [update]


_HANDLERS: Final[Mapping[type, Callable[[Any, int], list[Item]]]] = MappingProxyType(
    {
        Match: _trade,
        LastMatch: _trade,
        Ticker: _ticker,
        Snapshot: _snapshot,
        L2Update: _l2update,
    }
)


def _other(frame: str | bytes) -> Message | None:
    """A frame the typed decoder refused: a control message (None: nothing to publish), an
    error, or a bad frame, named as such."""
    message = load_object(frame)
    kind = field(message, "type", "message")
    if type(kind) is str and kind in _CONTROL:
        return None
    if kind == "error":
        raise FrameError(f"error: {message.get('message')} ({message.get('reason')})")
    if type(kind) is not str or kind not in TAGS:
        raise FrameError(f"unknown message type {show(kind)}")
    decoded: Message = converted(message, Message, kind)
    return decoded


_CONTROL: Final = frozenset(("subscriptions", "heartbeat"))  # confirmations: nothing to publish


def map_frame(frame: str | bytes, recv_ts: int) -> list[Item]:
    """The Coinbase mapper: it needs nothing but the frame, so one function serves all."""
    try:
        try:
            message: Message | None = _FRAME.decode(frame)
        except _NOT_DECODED:
            message = _other(frame)
            if message is None:
                return []
        return _HANDLERS[type(message)](message, recv_ts)
    except FrameError as exc:
        raise in_venue(NAME, exc) from None


# The mapper needs nothing but the frame: it reads product ids as they come.
make_mapper: Final = frame_only(map_frame, native_symbol)
