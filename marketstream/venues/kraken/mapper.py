"""Kraken spot's pure frame mapper: WebSocket v2 live, v1 frames for recorded captures.

One mapper reads both protocols, told apart by shape: v2 messages are objects with a
`channel` (data) or a `method` (answers to requests); v1 data frames are arrays
`[channelID, payload..., channelName, pair]` and v1 events are objects with an `event`.
Ingest subscribes with v2 only; v1 stays readable because users replay v1 captures.

Kraken numbers nothing: the integrity check of its book is a CRC32 over the exact text of
the top ten levels (`checksum.py`), which the book keeper verifies after every update that
carries one. Kraken sends no removal for a level pushed out of the subscribed depth, so
every book update names the depth to truncate to: v1 frames carry it in their channel
name (`book-10`), v2 frames not at all, so theirs is the depth ingest subscribes with.
v2 messages decode straight into msgspec Structs (`messages.py`), book levels keeping each
number's text (v2 writes them as JSON numbers at full precision, and a float cannot give
back "0.10000000"). A message the Structs refuse, or whose values the typed path would read
otherwise, is read as JSON, which names what is wrong: book frames with their numbers' text
kept, every other frame through orjson.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Final

import msgspec
import orjson

from marketstream.schemas.records import Candle, Level, Quote, Side, Trade
from marketstream.venues.base.mapper import (
    BookUpdate,
    FrameError,
    Item,
    LevelText,
    frame_only,
    in_venue,
)
from marketstream.venues.base.parsing import (
    NOT_TYPED,
    JsonObject,
    UntypedError,
    field,
    integer,
    iso_time,
    iso_time_or,
    number,
    ohlcv,
    one_of,
    optional_number,
    show,
    text,
    text_levels,
    typed_int,
)
from marketstream.venues.base.parsing import iso_to_ns as _iso_to_ns
from marketstream.venues.kraken import messages
from marketstream.venues.kraken.feed import BOOK_DEPTH
from marketstream.venues.kraken.symbols import NAME, native_symbol, normalized_symbol

_NS_PER_S: Final = 1_000_000_000
_V1_SIDES: Final[Mapping[str, Side]] = MappingProxyType({"b": "buy", "s": "sell"})
_V2_SIDES: Final[Mapping[str, Side]] = MappingProxyType({"buy": "buy", "sell": "sell"})
# Minutes -> the normalized interval name (Kraken offers 1, 5, 15, 30, 60, 240, 1440, ...).
_INTERVAL_UNITS: Final = ((10_080, "w"), (1_440, "d"), (60, "h"), (1, "m"))
# Only v2 book frames need their numbers' text; finding the channel's name in the raw text
# is far cheaper than decoding twice. A false hit (a subscribe answer naming the book
# channel) only costs the slower decoder.
_BOOK_MARK: Final = '"book"'
_BOOK_MARK_BYTES: Final = b'"book"'


def _interval_name(minutes: int) -> str:
    for size, unit in _INTERVAL_UNITS:
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    raise AssertionError("unreachable: every interval is a whole number of minutes")


# Decoding -----------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number Kraken sends")


# Built once: `json.loads` with options builds a new decoder on every call.
_EXACT_DECODER: Final = json.JSONDecoder(
    parse_float=str, parse_int=str, parse_constant=_no_constant
)


def _decode(frame: str | bytes) -> Any:
    try:
        if isinstance(frame, bytes):
            if _BOOK_MARK_BYTES in frame:
                return _EXACT_DECODER.decode(frame.decode())
        elif _BOOK_MARK in frame:
            return _EXACT_DECODER.decode(frame)
        return orjson.loads(frame)
    except ValueError as exc:  # both decoders' errors (and UnicodeDecodeError) are ValueErrors
        raise FrameError(f"not JSON: {exc}: {show(frame)}") from None


def _decimal(value: Any, name: str, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FrameError(f"{what}: {name} {show(value)} is not a decimal number") from None


def _seconds(value: Any, name: str, what: str) -> int:
    """v1 time "1618678142.557535" (seconds, as text) -> int ns, exactly."""
    if type(value) is str and value.isascii():
        whole, _, fraction = value.partition(".")
        if whole.isdigit() and (fraction.isdigit() or not fraction):
            return int(whole) * _NS_PER_S + int(fraction[:9].ljust(9, "0"))
    raise FrameError(f"{what}: {name} {show(value)} is not a time in seconds like '1618678142.5'")


def _symbol(item: JsonObject, what: str) -> str:
    return normalized_symbol(text(item, "symbol", what))


# v2 -----------------------------------------------------------------------------------------


def _data(message: JsonObject, what: str) -> list[JsonObject]:
    items = field(message, "data", what)
    if type(items) is not list or not all(type(item) is dict for item in items):
        raise FrameError(f"{what}: data {show(items)} is not a list of JSON objects")
    return items


def _v2_trade(message: JsonObject, recv_ts: int) -> list[Item]:
    """Kraken's `side` is the taker's side already."""
    what = "trade"
    trades: list[Item] = []
    for item in _data(message, what):
        side = one_of(item, "side", what, _V2_SIDES, "'buy' or 'sell'")
        trades.append(
            Trade(
                NAME,
                _symbol(item, what),
                iso_time(item, "timestamp", what),
                recv_ts,
                str(field(item, "trade_id", what)),
                number(item, "price", what),
                number(item, "qty", what),
                side,
            )
        )
    return trades


def _v2_ticker(message: JsonObject, recv_ts: int) -> list[Item]:
    """Older v2 tickers carry no time: the receive time is the best there is then."""
    what = "ticker"
    return [
        Quote(
            NAME,
            _symbol(item, what),
            iso_time_or(item, "timestamp", what, recv_ts),
            recv_ts,
            number(item, "bid", what),
            number(item, "bid_qty", what),
            number(item, "ask", what),
            number(item, "ask_qty", what),
            optional_number(item, "last", what),
        )
        for item in _data(message, what)
    ]


def _v2_ohlc(message: JsonObject, recv_ts: int) -> list[Item]:
    """Bars are never marked `closed`: Kraken does not flag a bar's completion, it just
    stops updating it, so every bar is published as still forming."""
    what = "ohlc"
    candles: list[Item] = []
    for item in _data(message, what):
        minutes = integer(item, "interval", what)
        if minutes <= 0:
            raise FrameError(f"{what}: interval {minutes} is not a positive number of minutes")
        candles.append(
            Candle(
                NAME,
                _symbol(item, what),
                _interval_name(minutes),
                iso_time(item, "interval_begin", what),
                *ohlcv(item, what),
                integer(item, "trades", what),
                False,
            )
        )
    return candles


_PRICE_QTY: Final = itemgetter("price", "qty")


def _v2_levels(item: JsonObject, key: str, what: str) -> tuple[list[Level], list[LevelText]]:
    """`[{"price": 45283.5, "qty": 0.1}]` decoded with number text kept -> floats and text."""
    return text_levels(item, key, what, _PRICE_QTY, "{price, qty} decimal numbers")


def _v2_checksum(item: JsonObject, what: str) -> int | None:
    value = item.get("checksum")
    if value is None:
        return None
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    raise FrameError(f"{what}: checksum {show(value)} is not an unsigned 32-bit integer")


def _v2_book(message: JsonObject, recv_ts: int) -> list[Item]:
    """Snapshots carry no time (the receive time stands in); updates do.

    v2 frames do not say their depth (only the subscribe answer does, which a pure mapper
    cannot carry over): they are truncated to the depth ingest subscribes with.
    """
    what = "book"
    kind = text(message, "type", what)
    if kind not in ("snapshot", "update"):
        raise FrameError(f"{what}: type {show(kind)} is not 'snapshot' or 'update'")
    updates: list[Item] = []
    for item in _data(message, what):
        bids, bid_texts = _v2_levels(item, "bids", what)
        asks, ask_texts = _v2_levels(item, "asks", what)
        updates.append(
            BookUpdate(
                NAME,
                _symbol(item, what),
                iso_time_or(item, "timestamp", what, recv_ts),
                recv_ts,
                bids,
                asks,
                is_snapshot=kind == "snapshot",
                checksum=_v2_checksum(item, what),
                bid_texts=bid_texts,
                ask_texts=ask_texts,
                depth_limit=BOOK_DEPTH,
            )
        )
    return updates


def _nothing(message: JsonObject, recv_ts: int) -> list[Item]:
    """Heartbeats and the connection status: nothing to publish."""
    return []


_V2_CHANNELS: Final[Mapping[str, Callable[[JsonObject, int], list[Item]]]] = MappingProxyType(
    {
        "trade": _v2_trade,
        "ticker": _v2_ticker,
        "ohlc": _v2_ohlc,
        "book": _v2_book,
        "heartbeat": _nothing,
        "status": _nothing,
    }
)


def _v2_answer(message: JsonObject) -> list[Item]:
    """Answers to subscribe, unsubscribe and ping; a refused request is dead-lettered."""
    if message.get("success") is False:
        symbol = message.get("symbol")
        about = f" ({symbol})" if symbol is not None else ""
        raise FrameError(f"{message.get('method')} failed: {message.get('error')}{about}")
    return []


# v2, typed --------------------------------------------------------------------------------
# Each reads what its JSON twin above reads; a value that twin would refuse (or read another
# way) raises UntypedError or FrameError, and `map_frame` reads the message as JSON instead.


def _typed_time(value: Any) -> int:
    if type(value) is not str:
        raise UntypedError
    try:
        return _iso_to_ns(value)
    except ValueError:
        raise UntypedError from None


def _typed_trade(push: messages.Push, recv_ts: int) -> list[Item]:
    trades: list[Item] = []
    for item in _TRADES.decode(push.data):
        side = _V2_SIDES.get(item.side)
        if side is None:
            raise UntypedError
        if type(item.trade_id) is int:
            typed_int(item.trade_id)  # orjson reads a wider one as a float
        trades.append(
            Trade(
                NAME,
                normalized_symbol(item.symbol),
                _typed_time(item.timestamp),
                recv_ts,
                str(item.trade_id),
                item.price,
                item.qty,
                side,
            )
        )
    return trades


def _typed_ticker(push: messages.Push, recv_ts: int) -> list[Item]:
    return [
        Quote(
            NAME,
            normalized_symbol(item.symbol),
            recv_ts if item.timestamp is msgspec.UNSET else _typed_time(item.timestamp),
            recv_ts,
            item.bid,
            item.bid_qty,
            item.ask,
            item.ask_qty,
            item.last,
        )
        for item in _TICKERS.decode(push.data)
    ]


def _typed_ohlc(push: messages.Push, recv_ts: int) -> list[Item]:
    candles: list[Item] = []
    for item in _OHLCS.decode(push.data):
        minutes = typed_int(item.interval)
        if minutes <= 0:
            raise UntypedError
        candles.append(
            Candle(
                NAME,
                normalized_symbol(item.symbol),
                _interval_name(minutes),
                _typed_time(item.interval_begin),
                item.open,
                item.high,
                item.low,
                item.close,
                item.volume,
                typed_int(item.trades),
                False,
            )
        )
    return candles


_NUMBER_STARTS: Final = frozenset("-0123456789")


def _typed_levels(entries: list[messages.Level]) -> tuple[list[Level], list[LevelText]]:
    """Levels as floats and as their numbers' text; a value that is not a JSON number (the
    JSON path reads a string's text as it is) goes to the JSON path."""
    levels: list[Level] = []
    texts: list[LevelText] = []
    for entry in entries:
        # latin-1 never fails: a number's text is ASCII, and anything else is refused below
        price = str(entry.price, "latin-1")
        size = str(entry.qty, "latin-1")
        if price[0] not in _NUMBER_STARTS or size[0] not in _NUMBER_STARTS:
            raise UntypedError
        levels.append((float(price), float(size)))
        texts.append((price, size))
    return levels, texts


def _typed_book(push: messages.Push, recv_ts: int) -> list[Item]:
    kind = push.type
    if kind != "snapshot" and kind != "update":  # noqa: PLR1714  (any JSON value: no set)
        raise UntypedError
    updates: list[Item] = []
    for item in _BOOKS.decode(push.data):
        bids, bid_texts = _typed_levels(item.bids)
        asks, ask_texts = _typed_levels(item.asks)
        crc = item.checksum
        if crc is not None and (type(crc) is not int or crc < 0):
            raise UntypedError
        updates.append(
            BookUpdate(
                NAME,
                normalized_symbol(item.symbol),
                recv_ts if item.timestamp is msgspec.UNSET else _typed_time(item.timestamp),
                recv_ts,
                bids,
                asks,
                is_snapshot=kind == "snapshot",
                checksum=crc,
                bid_texts=bid_texts,
                ask_texts=ask_texts,
                depth_limit=BOOK_DEPTH,
            )
        )
    return updates


_PUSH: Final = msgspec.json.Decoder(messages.Push)
_TRADES: Final = msgspec.json.Decoder(list[messages.Trade], strict=False)
_TICKERS: Final = msgspec.json.Decoder(list[messages.Ticker], strict=False)
_OHLCS: Final = msgspec.json.Decoder(list[messages.Ohlc], strict=False)
_BOOKS: Final = msgspec.json.Decoder(list[messages.Book])
_TYPED: Final[Mapping[str, Callable[[messages.Push, int], list[Item]]]] = MappingProxyType(
    {"trade": _typed_trade, "ticker": _typed_ticker, "ohlc": _typed_ohlc, "book": _typed_book}
)
_NOT_TYPED: Final = (*NOT_TYPED, FrameError)
_V1_START: Final = "["
_V1_START_BYTES: Final = b"["


# v1 -----------------------------------------------------------------------------------------


def _v1_trade_id(pair: str, entry: list[Any], index: int) -> str:
    """v1 trades have no id: a digest of the trade's own values and its place in the frame,
    so that replaying the same frame yields the same ids (and the sinks deduplicate)."""
    key = f"{pair}|{entry[2]}|{entry[0]}|{entry[1]}|{entry[3]}|{index}"
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def _v1_trades(payload: Any, pair: str, recv_ts: int) -> list[Item]:
    what = "v1 trade"
    if type(payload) is not list:
        raise FrameError(f"{what}: payload {show(payload)} is not a list of trades")
    symbol = normalized_symbol(pair)
    trades: list[Item] = []
    for index, entry in enumerate(payload):
        if type(entry) is not list or len(entry) < 4:
            raise FrameError(
                f"{what}: trade {show(entry)} is not [price, volume, time, side, orderType, misc]"
            )
        side = _V1_SIDES.get(entry[3]) if type(entry[3]) is str else None
        if side is None:
            raise FrameError(f"{what}: side {show(entry[3])} is not 'b' or 's'")
        trades.append(
            Trade(
                NAME,
                symbol,
                _seconds(entry[2], "time", what),
                recv_ts,
                _v1_trade_id(pair, entry, index),
                _decimal(entry[0], "price", what),
                _decimal(entry[1], "volume", what),
                side,
            )
        )
    return trades


def _v1_values(payload: JsonObject, key: str, count: int, what: str) -> list[Any]:
    values = field(payload, key, what)
    if type(values) is not list or len(values) < count:
        raise FrameError(f"{what}: {key} {show(values)} is not a list of {count} or more values")
    return values


def _v1_ticker(payload: Any, pair: str, recv_ts: int) -> list[Item]:
    """v1 tickers carry no time: stamped with the receive time."""
    what = "v1 ticker"
    if type(payload) is not dict:
        raise FrameError(f"{what}: payload {show(payload)} is not a JSON object")
    ask = _v1_values(payload, "a", 3, what)  # [price, whole lot volume, lot volume]
    bid = _v1_values(payload, "b", 3, what)
    last = _v1_values(payload, "c", 1, what)  # [price, lot volume]
    quote = Quote(
        NAME,
        normalized_symbol(pair),
        recv_ts,
        recv_ts,
        _decimal(bid[0], "b[0] (best bid price)", what),
        _decimal(bid[2], "b[2] (best bid lot volume)", what),
        _decimal(ask[0], "a[0] (best ask price)", what),
        _decimal(ask[2], "a[2] (best ask lot volume)", what),
        _decimal(last[0], "c[0] (last trade price)", what),
    )
    return [quote]


def _v1_ohlc(payload: Any, pair: str, minutes: int, recv_ts: int) -> list[Item]:
    """[time, etime, open, high, low, close, vwap, volume, count]; the bar opened one
    interval before its end time `etime`. Never `closed` (see `_v2_ohlc`)."""
    what = "v1 ohlc"
    if type(payload) is not list or len(payload) < 9:
        raise FrameError(
            f"{what}: payload {show(payload)} is not "
            "[time, etime, open, high, low, close, vwap, volume, count]"
        )
    count = payload[8]
    if type(count) is not int:
        raise FrameError(f"{what}: count {show(count)} is not an integer")
    candle = Candle(
        NAME,
        normalized_symbol(pair),
        _interval_name(minutes),
        _seconds(payload[1], "etime", what) - minutes * 60 * _NS_PER_S,
        _decimal(payload[2], "open", what),
        _decimal(payload[3], "high", what),
        _decimal(payload[4], "low", what),
        _decimal(payload[5], "close", what),
        _decimal(payload[7], "volume", what),
        count,
        False,
    )
    return [candle]


def _v1_levels(
    entries: Any, key: str, what: str, levels: list[Level], texts: list[LevelText]
) -> int:
    """Append `[[price, volume, timestamp(, "r")], ...]` to levels and texts; return the
    latest level timestamp in ns (0 if none). "r" marks a level republished into the
    subscribed depth: applied like any other."""
    if type(entries) is not list:
        raise FrameError(f"{what}: {key} {show(entries)} is not a list of price levels")
    latest = 0
    for entry in entries:
        if (
            type(entry) is not list
            or len(entry) < 3
            or type(entry[0]) is not str
            or type(entry[1]) is not str
        ):
            raise FrameError(
                f"{what}: {key} level {show(entry)} is not [price, volume, timestamp] in text"
            )
        price, size = entry[0], entry[1]
        levels.append(
            (_decimal(price, f"{key} price", what), _decimal(size, f"{key} volume", what))
        )
        texts.append((price, size))
        latest = max(latest, _seconds(entry[2], f"{key} timestamp", what))
    return latest


def _v1_book(payloads: list[Any], pair: str, depth: int | None, recv_ts: int) -> list[Item]:
    """A snapshot `{"as": [...], "bs": [...]}` (no checksum, no time: stamped with the receive
    time), or updates `{"a": [...]}` and/or `{"b": [...], "c": "checksum"}`, stamped with
    their latest level's time. `depth` is the one the channel name gives (`book-25`)."""
    what = "v1 book"
    bids: list[Level] = []
    asks: list[Level] = []
    bid_texts: list[LevelText] = []
    ask_texts: list[LevelText] = []
    first = payloads[0] if len(payloads) == 1 else None
    if type(first) is dict and ("as" in first or "bs" in first):
        _v1_levels(first.get("as", []), "as", what, asks, ask_texts)
        _v1_levels(first.get("bs", []), "bs", what, bids, bid_texts)
        snapshot = BookUpdate(
            NAME,
            normalized_symbol(pair),
            recv_ts,
            recv_ts,
            bids,
            asks,
            is_snapshot=True,
            bid_texts=bid_texts,
            ask_texts=ask_texts,
            depth_limit=depth,
        )
        return [snapshot]
    latest = 0
    book_checksum: int | None = None
    for part in payloads:
        if type(part) is not dict:
            raise FrameError(f"{what}: {show(part)} is not an object of a, b or c")
        for key, value in part.items():
            if key == "a":
                latest = max(latest, _v1_levels(value, key, what, asks, ask_texts))
            elif key == "b":
                latest = max(latest, _v1_levels(value, key, what, bids, bid_texts))
            elif key == "c" and type(value) is str and value.isascii() and value.isdigit():
                book_checksum = int(value)
            else:
                raise FrameError(f"{what}: field {key!r} = {show(value)} is not a, b or c")
    update = BookUpdate(
        NAME,
        normalized_symbol(pair),
        latest or recv_ts,
        recv_ts,
        bids,
        asks,
        is_snapshot=False,
        checksum=book_checksum,
        bid_texts=bid_texts,
        ask_texts=ask_texts,
        depth_limit=depth,
    )
    return [update]


def _v1_data(frame: list[Any], recv_ts: int) -> list[Item]:
    if len(frame) < 4 or type(frame[-2]) is not str or type(frame[-1]) is not str:
        raise FrameError(
            f"v1 frame {show(frame)} is not [channelID, payload..., channelName, pair]"
        )
    channel, pair = frame[-2], frame[-1]
    payloads = frame[1:-2]
    name, dash, suffix = channel.partition("-")
    if name == "book":
        return _v1_book(payloads, pair, _v1_book_depth(channel, dash, suffix), recv_ts)
    if len(payloads) != 1:
        raise FrameError(f"v1 {channel}: expected one payload, got {len(payloads)}")
    if name == "trade":
        return _v1_trades(payloads[0], pair, recv_ts)
    if name == "ticker":
        return _v1_ticker(payloads[0], pair, recv_ts)
    if name == "ohlc" and suffix.isascii() and suffix.isdigit() and int(suffix) > 0:
        return _v1_ohlc(payloads[0], pair, int(suffix), recv_ts)
    raise FrameError(f"v1 channelName {show(channel)} is not trade, ticker, ohlc-N or book-N")


def _v1_book_depth(channel: str, dash: str, suffix: str) -> int | None:
    """`book-1000` -> 1000: captures of any depth truncate to their own; `book` alone -> None
    (the exchange's default depth)."""
    if not dash:
        return None
    if suffix.isascii() and suffix.isdigit() and int(suffix) > 0:
        return int(suffix)
    raise FrameError(f"v1 channelName {show(channel)} is not book-N with N levels")


def _v1_event(message: JsonObject) -> list[Item]:
    """Heartbeats, status and pongs are dropped; refusals are dead-lettered."""
    event = message.get("event")
    if event in ("heartbeat", "systemStatus", "pong"):
        return []
    if event == "subscriptionStatus":
        if message.get("status") == "error":
            raise FrameError(
                f"subscription refused: {message.get('errorMessage')} ({message.get('pair')})"
            )
        return []
    if event == "error":
        raise FrameError(f"error: {message.get('errorMessage')}")
    raise FrameError(f"unknown event {show(event)}")


# The mapper ---------------------------------------------------------------------------------


def map_frame(frame: str | bytes, recv_ts: int) -> list[Item]:
    """The Kraken mapper (v1 and v2): it needs nothing but the frame. v2 data messages go
    the typed way first; v1 arrays (which start with `[`) and the rest are read as JSON."""
    try:
        if not (
            frame.startswith(_V1_START)
            if isinstance(frame, str)
            else frame.startswith(_V1_START_BYTES)
        ):
            try:
                push = _PUSH.decode(frame)
                typed = _TYPED.get(push.channel)
                if typed is not None:
                    return typed(push, recv_ts)
            except _NOT_TYPED:
                pass
        return _map(frame, recv_ts)
    except FrameError as exc:
        raise in_venue(NAME, exc) from None


def _map(frame: str | bytes, recv_ts: int) -> list[Item]:
    """A frame read as JSON (v1 and v2)."""
    message = _decode(frame)
    if type(message) is list:
        return _v1_data(message, recv_ts)
    if type(message) is not dict:
        raise FrameError(f"expected a JSON object or array, got {show(message)}")
    channel = message.get("channel")
    if channel is not None:
        try:
            handler = _V2_CHANNELS[channel]
        except (KeyError, TypeError):  # TypeError: a channel that is not even a string
            raise FrameError(f"unknown channel {show(channel)}") from None
        return handler(message, recv_ts)
    if "method" in message:
        return _v2_answer(message)
    if "event" in message:
        return _v1_event(message)
    raise FrameError(f"no channel, method or event in a message with fields {sorted(message)}")


# The mapper needs nothing but the frame: it reads pairs as they come.
make_mapper: Final = frame_only(map_frame, native_symbol)
