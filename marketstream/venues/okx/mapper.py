"""OKX v5 public feed, spot and perpetual swaps: the pure frame mapper `(frame, recv_ts) -> items`.

Every push is `{"arg": {"channel": ..., "instId": ...}, "data": [...]}` (book pushes add
`action`); answers to requests are `{"event": ...}` and the answer to the text `ping` is the
text `pong`. Times, prices and sizes arrive as strings; book levels keep their text because
OKX's checksum is computed over the text as sent. A WebSocket book snapshot is still
accepted (older captures, feeds that still send one; see `rest.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from types import MappingProxyType
from typing import Final

from marketstream.schemas.records import Candle, Funding, Instrument, Level, Quote, Side, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, LevelText, in_venue
from marketstream.venues.base.parsing import (
    NS_PER_MS,
    JsonObject,
    field,
    load_object,
    mapping,
    number,
    one_of,
    show,
    text,
    text_levels,
)
from marketstream.venues.okx.symbols import NAME, native_symbol, normalized_symbol

_SIDES: Final[Mapping[str, Side]] = MappingProxyType({"buy": "buy", "sell": "sell"})
# Answers that carry nothing to publish: (un)subscribe acknowledgements, service notices
# ("the connection will soon be closed for an upgrade": the runner reconnects on the close),
# and the per-channel connection count OKX reports after subscribing.
_CONTROL_EVENTS: Final = frozenset({"subscribe", "unsubscribe", "notice", "channel-conn-count"})


# --- field access --------------------------------------------------------------------------


def millis_text(obj: JsonObject, key: str, what: str) -> int:
    """OKX times are milliseconds as decimal strings (`"1597026383085"`): returned in ns."""
    return _millis_value(field(obj, key, what), key, what)


def _millis_value(value: object, name: str, what: str) -> int:
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value) * NS_PER_MS
    if type(value) is int:
        return value * NS_PER_MS
    raise FrameError(f"{what}: {name} {show(value)} is not a time in milliseconds")


def optional_int(obj: JsonObject, key: str, what: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not int:
        raise FrameError(f"{what}: {key} {show(value)} is not an integer")
    return value


def _data(message: JsonObject, what: str) -> list[object]:
    data = field(message, "data", what)
    if type(data) is not list:
        raise FrameError(f"{what}: data {show(data)} is not a list")
    return data


def objects(message: JsonObject, what: str) -> list[JsonObject]:
    objects: list[JsonObject] = []
    for item in _data(message, what):
        if type(item) is not dict:
            raise FrameError(f"{what}: data item {show(item)} is not a JSON object")
        objects.append(item)
    return objects


_PRICE_SIZE: Final = itemgetter(0, 1)


def book_side(item: JsonObject, key: str, what: str) -> tuple[list[Level], list[LevelText]]:
    """`[[price, size, liquidated orders, orders], ...]` -> float levels and their exact text."""
    return text_levels(item, key, what, _PRICE_SIZE, "[price, size, ...] decimal strings")


# --- the mapper ----------------------------------------------------------------------------

Handler = Callable[[str, str, JsonObject, int], list[Item]]  # (channel, symbol, message, recv_ts)


@dataclass(frozen=True, slots=True)
class OkxMapper:
    """Maps one frame to items; configured instIds are looked up, others read off the frame."""

    symbols: Mapping[str, str]  # instId -> normalized symbol, read-only

    def __call__(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        try:
            return self._map(frame, recv_ts)
        except FrameError as exc:
            raise in_venue(NAME, exc) from None

    def _map(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        if frame == (b"pong" if type(frame) is bytes else "pong"):
            return []  # the answer to our keep-alive `ping`
        message = load_object(frame)
        if "event" in message:
            return _event(message)
        arg = mapping(message, "arg", "push")
        channel = text(arg, "channel", "arg")
        handler = _HANDLERS.get(channel)
        if handler is None:
            raise FrameError(f"unknown channel {show(channel)}")
        inst_id = text(arg, "instId", "arg")
        symbol = self.symbols.get(inst_id)
        if symbol is None:
            symbol = normalized_symbol(inst_id)
        return handler(channel, symbol, message, recv_ts)


def _event(message: JsonObject) -> list[Item]:
    event = message["event"]
    if event == "error":
        raise FrameError(f"error {message.get('code')}: {message.get('msg')}")
    if event in _CONTROL_EVENTS:
        return []
    raise FrameError(f"unknown event {show(event)}")


def _trades(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    what = "trades"
    trades: list[Item] = []
    for item in objects(message, what):
        side = one_of(item, "side", what, _SIDES, "'buy' or 'sell'")
        trades.append(
            Trade(
                NAME,
                symbol,
                millis_text(item, "ts", what),
                recv_ts,
                text(item, "tradeId", what),
                number(item, "px", what),
                number(item, "sz", what),
                side,  # OKX's trade side is the taker's
            )
        )
    return trades


def _tickers(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    what = "tickers"
    return [
        Quote(
            NAME,
            symbol,
            millis_text(item, "ts", what),
            recv_ts,
            number(item, "bidPx", what),
            number(item, "bidSz", what),
            number(item, "askPx", what),
            number(item, "askSz", what),
            number(item, "last", what),
        )
        for item in objects(message, what)
    ]


# Candle channels the mapper reads -> the normalized interval (OKX's `1H`/`1M` are hour/month).
_CANDLE_INTERVALS: Final[Mapping[str, str]] = MappingProxyType({"candle1m": "1m"})


def _candles(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    """`[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`; `confirm` "1": the candle closed.

    Captures from before OKX added `confirm` (2022) have 7 fields; their candles read as open.
    """
    what = channel
    candles: list[Item] = []
    for row in _data(message, what):
        if type(row) is not list or len(row) < 6:
            raise FrameError(
                f"{what}: {show(row)} is not a list [ts, open, high, low, close, volume, ...]"
            )
        candles.append(
            Candle(
                NAME,
                symbol,
                _CANDLE_INTERVALS[channel],
                _millis_value(row[0], "ts", what),
                _row_number(row, 1, "open", what),
                _row_number(row, 2, "high", what),
                _row_number(row, 3, "low", what),
                _row_number(row, 4, "close", what),
                _row_number(row, 5, "vol", what),
                closed=len(row) > 8 and row[8] == "1",
            )
        )
    return candles


def _row_number(row: list[object], index: int, name: str, what: str) -> float:
    value = row[index]
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            pass
    raise FrameError(f"{what}: {name} {show(value)} is not a decimal number")


def _books(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    """Incremental books: a `snapshot` after subscribing, then `update`s linked by seqId."""
    what = channel
    action = message.get("action")
    if action not in ("snapshot", "update"):
        raise FrameError(f"{what}: action {show(action)} is not 'snapshot' or 'update'")
    return [
        _book_update(symbol, item, recv_ts, what, is_snapshot=action == "snapshot")
        for item in objects(message, what)
    ]


def _book_snapshots(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    """`books5` and `bbo-tbt`: every push is the whole (shallow) book."""
    return [
        _book_update(symbol, item, recv_ts, channel, is_snapshot=True)
        for item in objects(message, channel)
    ]


def _book_update(
    symbol: str, item: JsonObject, recv_ts: int, what: str, *, is_snapshot: bool
) -> BookUpdate:
    # OKX retires the checksum: where it is dropped or sent as 0 there is nothing to verify
    # (a true CRC of 0 is one in 2**32 and merely goes unchecked).
    crc = optional_int(item, "checksum", what)
    # Captures from before 2022 carry no seqId/prevSeqId; snapshots have prevSeqId -1.
    prev = optional_int(item, "prevSeqId", what)
    return book_update(
        symbol,
        item,
        recv_ts,
        what,
        is_snapshot=is_snapshot,
        # An update covers the ids after prevSeqId up to seqId: with first_seq so, the
        # keeper's PREV_LAST bridge (first <= snapshot <= last, or prev == snapshot) is
        # exactly OKX's join rule prevSeqId <= snapshot seqId < seqId.
        first_seq=prev + 1 if prev is not None and not is_snapshot else None,
        last_seq=optional_int(item, "seqId", what),
        prev_seq=prev,
        checksum=crc or None,
    )


def book_update(
    symbol: str,
    item: JsonObject,
    recv_ts: int,
    what: str,
    *,
    is_snapshot: bool,
    last_seq: int | None,
    first_seq: int | None = None,
    prev_seq: int | None = None,
    checksum: int | None = None,
) -> BookUpdate:
    """One book item's levels (as floats and as sent) and time: pushes and the REST snapshot
    write them alike; the caller reads the sequence fields, which they do not."""
    bids, bid_texts = book_side(item, "bids", what)
    asks, ask_texts = book_side(item, "asks", what)
    return BookUpdate(
        NAME,
        symbol,
        millis_text(item, "ts", what),
        recv_ts,
        bids,
        asks,
        is_snapshot=is_snapshot,
        first_seq=first_seq,
        last_seq=last_seq,
        prev_seq=prev_seq,
        checksum=checksum,
        bid_texts=bid_texts,
        ask_texts=ask_texts,
    )


def _funding_rate(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    """This channel carries no mark or index price; `ts` is missing from older pushes."""
    what = channel
    rates: list[Item] = []
    for item in objects(message, what):
        next_time = item.get("nextFundingTime")
        next_ts = (
            None if next_time in (None, "") else _millis_value(next_time, "nextFundingTime", what)
        )
        ts = millis_text(item, "ts" if "ts" in item else "fundingTime", what)
        rates.append(
            Funding(NAME, symbol, ts, number(item, "fundingRate", what), None, None, next_ts)
        )
    return rates


_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {
        "trades": _trades,
        "tickers": _tickers,
        "candle1m": _candles,
        "books": _books,
        # The same layout at other depths, as captures of them hold (tbt: VIP-only feeds).
        "books-l2-tbt": _books,
        "books50-l2-tbt": _books,
        "books5": _book_snapshots,
        "bbo-tbt": _book_snapshots,
        "funding-rate": _funding_rate,
    }
)


def make_mapper(symbols: Sequence[str], instruments: Sequence[Instrument] = ()) -> OkxMapper:
    return OkxMapper(MappingProxyType({native_symbol(symbol): symbol for symbol in symbols}))
