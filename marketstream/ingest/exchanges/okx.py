"""OKX v5 public feed, spot and perpetual swaps: frame mapper, subscribe rules, book checksum.

Every push is `{"arg": {"channel": ..., "instId": ...}, "data": [...]}` (book pushes add
`action`); answers to requests are `{"event": ...}` and the answer to the text `ping` is the
text `pong`. Instrument ids name their market (`BTC-USDT`, `BTC-USDT-SWAP`), so a frame alone
names its normalized symbol: offline mapping needs no recorded URL.

Candle channels live on the `/business` endpoint since OKX moved them there in June 2023;
everything else here is on `/public`, so a subscription with candles is split in two
connections. Times, prices and sizes arrive as strings; book levels keep their text because
OKX's checksum is computed over the text as sent.

From early August 2026 the `books` channels send no first snapshot and no checksum: the book
starts from `GET /api/v5/market/books` (`snapshot_requests`, `map_snapshot`), joined to the
updates by OKX's rule `prevSeqId <= snapshot seqId < seqId`. A WebSocket snapshot is still
accepted (older captures, feeds that still send one).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qs, urlsplit

import orjson

from marketstream.errors import ConfigError
from marketstream.ingest.events import BookUpdate, FrameError, Item, LevelText
from marketstream.ingest.exchange import Exchange, Sequencing, SnapshotRequest, Subscription
from marketstream.ingest.exchanges.parsing import (
    NS_PER_MS,
    JsonObject,
    field,
    load_object,
    mapping,
    number,
    show,
    text,
)
from marketstream.schemas.instruments import SYMBOL_RE, Channel, parse_symbol
from marketstream.schemas.records import Candle, Funding, Level, Quote, Side, Trade

NAME: Final = "okx"
CHANNELS: Final[frozenset[Channel]] = frozenset(("trades", "quotes", "candles", "books", "funding"))
_FEED_CHANNELS: Final[Mapping[Channel, str]] = MappingProxyType(
    {
        "trades": "trades",
        "quotes": "tickers",
        "candles": "candle1m",
        "books": "books",  # 400 levels: a snapshot, then changes every 100 ms
        "funding": "funding-rate",
    }
)
PUBLIC_PATH: Final = "/public"
BUSINESS_PATH: Final = "/business"
_BUSINESS_CHANNELS: Final[frozenset[Channel]] = frozenset(("candles",))
CHECKSUM_DEPTH: Final = 25  # levels per side OKX's book checksum covers
BOOK_DEPTH: Final = 400  # levels the `books` channel keeps, and the most REST returns
SNAPSHOT_PATH: Final = "/api/v5/market/books"  # REST order book snapshot
# OKX caps a request at 64 KB (4 KB in earlier versions of its docs): 4 KB fits either.
SUBSCRIBE_MAX_BYTES: Final = 4096
_SIDES: Final[Mapping[str, Side]] = MappingProxyType({"buy": "buy", "sell": "sell"})
# Answers that carry nothing to publish: (un)subscribe acknowledgements, service notices
# ("the connection will soon be closed for an upgrade": the runner reconnects on the close),
# and the per-channel connection count OKX reports after subscribing.
_CONTROL_EVENTS: Final = frozenset({"subscribe", "unsubscribe", "notice", "channel-conn-count"})


# --- symbols -------------------------------------------------------------------------------


def native_symbol(symbol: str) -> str:
    """BTC-USDT -> BTC-USDT, BTC-USDT-PERP -> BTC-USDT-SWAP."""
    instrument = parse_symbol(symbol)
    swap = "-SWAP" if instrument.perp else ""
    return f"{instrument.base}-{instrument.quote}{swap}"


def normalized_symbol(inst_id: str) -> str:
    """BTC-USDT -> BTC-USDT, BTC-USDT-SWAP -> BTC-USDT-PERP; futures and options are refused."""
    parts = inst_id.split("-")
    if len(parts) == 2:
        symbol = inst_id
    elif len(parts) == 3 and parts[2] == "SWAP":
        symbol = f"{parts[0]}-{parts[1]}-PERP"
    else:
        raise FrameError(
            f"instId {inst_id!r} is not supported: only spot (BTC-USDT) and perpetual swaps "
            "(BTC-USDT-SWAP), not dated futures or options"
        )
    if SYMBOL_RE.match(symbol) is None:
        raise FrameError(f"instId {inst_id!r} is not an OKX spot or swap instrument id")
    return symbol


# --- field access --------------------------------------------------------------------------


def _millis(obj: JsonObject, key: str, what: str) -> int:
    """OKX times are milliseconds as decimal strings (`"1597026383085"`): returned in ns."""
    return _millis_value(field(obj, key, what), key, what)


def _millis_value(value: object, name: str, what: str) -> int:
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value) * NS_PER_MS
    if type(value) is int:
        return value * NS_PER_MS
    raise FrameError(f"{what}: {name} {show(value)} is not a time in milliseconds")


def _optional_int(obj: JsonObject, key: str, what: str) -> int | None:
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


def _objects(message: JsonObject, what: str) -> list[JsonObject]:
    objects: list[JsonObject] = []
    for item in _data(message, what):
        if type(item) is not dict:
            raise FrameError(f"{what}: data item {show(item)} is not a JSON object")
        objects.append(item)
    return objects


def _book_side(item: JsonObject, key: str, what: str) -> tuple[list[Level], list[LevelText]]:
    """`[[price, size, liquidated orders, orders], ...]` -> float levels and their exact text."""
    raw = field(item, key, what)
    levels: list[Level] = []
    texts: list[LevelText] = []
    try:
        for level in raw:
            price, size = level[0], level[1]
            if type(price) is not str or type(size) is not str:
                raise TypeError
            levels.append((float(price), float(size)))
            texts.append((price, size))
    except (TypeError, ValueError, IndexError, KeyError):
        raise FrameError(
            f"{what}: {key} {show(raw)} is not a list of [price, size, ...] decimal strings"
        ) from None
    return levels, texts


# --- the book checksum ---------------------------------------------------------------------


def checksum(bids: list[LevelText], asks: list[LevelText]) -> int:
    """OKX's CRC32 of `bid1px:bid1sz:ask1px:ask1sz:bid2px:...` over the top 25 levels per side.

    The sides are interleaved level by level; where one side runs out, the other's remaining
    levels follow alone. OKX sends the value as a signed 32-bit integer, so it is returned so.
    """
    parts: list[str] = []
    for bid, ask in zip_longest(bids[:CHECKSUM_DEPTH], asks[:CHECKSUM_DEPTH]):
        if bid is not None:
            parts += bid
        if ask is not None:
            parts += ask
    value = zlib.crc32(":".join(parts).encode())
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


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
            raise FrameError(f"{NAME}: {exc}") from None

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
    for item in _objects(message, what):
        side = _SIDES.get(text(item, "side", what))
        if side is None:
            raise FrameError(f"{what}: side {show(item['side'])} is not 'buy' or 'sell'")
        trades.append(
            Trade(
                NAME,
                symbol,
                _millis(item, "ts", what),
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
            _millis(item, "ts", what),
            recv_ts,
            number(item, "bidPx", what),
            number(item, "bidSz", what),
            number(item, "askPx", what),
            number(item, "askSz", what),
            number(item, "last", what),
        )
        for item in _objects(message, what)
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
        for item in _objects(message, what)
    ]


def _book_snapshots(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    """`books5` and `bbo-tbt`: every push is the whole (shallow) book."""
    return [
        _book_update(symbol, item, recv_ts, channel, is_snapshot=True)
        for item in _objects(message, channel)
    ]


def _book_update(
    symbol: str, item: JsonObject, recv_ts: int, what: str, *, is_snapshot: bool
) -> BookUpdate:
    bids, bid_texts = _book_side(item, "bids", what)
    asks, ask_texts = _book_side(item, "asks", what)
    # OKX retires the checksum: where it is dropped or sent as 0 there is nothing to verify
    # (a true CRC of 0 is one in 2**32 and merely goes unchecked).
    crc = _optional_int(item, "checksum", what)
    # Captures from before 2022 carry no seqId/prevSeqId; snapshots have prevSeqId -1.
    prev = _optional_int(item, "prevSeqId", what)
    return BookUpdate(
        NAME,
        symbol,
        _millis(item, "ts", what),
        recv_ts,
        bids,
        asks,
        is_snapshot=is_snapshot,
        # An update covers the ids after prevSeqId up to seqId: with first_seq so, the
        # keeper's PREV_LAST bridge (first <= snapshot <= last, or prev == snapshot) is
        # exactly OKX's join rule prevSeqId <= snapshot seqId < seqId.
        first_seq=prev + 1 if prev is not None and not is_snapshot else None,
        last_seq=_optional_int(item, "seqId", what),
        prev_seq=prev,
        checksum=crc or None,
        bid_texts=bid_texts,
        ask_texts=ask_texts,
    )


def _funding_rate(channel: str, symbol: str, message: JsonObject, recv_ts: int) -> list[Item]:
    """This channel carries no mark or index price; `ts` is missing from older pushes."""
    what = channel
    rates: list[Item] = []
    for item in _objects(message, what):
        next_time = item.get("nextFundingTime")
        next_ts = (
            None if next_time in (None, "") else _millis_value(next_time, "nextFundingTime", what)
        )
        ts = _millis(item, "ts" if "ts" in item else "fundingTime", what)
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


def make_mapper(symbols: Sequence[str]) -> OkxMapper:
    return OkxMapper(MappingProxyType({native_symbol(symbol): symbol for symbol in symbols}))


# --- REST book snapshots --------------------------------------------------------------------


def snapshot_requests(rest_base: str, symbols: Sequence[str]) -> list[SnapshotRequest]:
    """`GET /api/v5/market/books?instId=...&sz=400`: as deep as the `books` channel keeps."""
    base = rest_base.rstrip("/")
    return [
        SnapshotRequest(
            symbol, f"{base}{SNAPSHOT_PATH}?instId={native_symbol(symbol)}&sz={BOOK_DEPTH}"
        )
        for symbol in symbols
    ]


def snapshot_symbol(url: str) -> str:
    """The symbol a snapshot URL asks for, so that recorded snapshots normalize offline."""
    inst_ids = parse_qs(urlsplit(url).query).get("instId")
    if not inst_ids:
        raise FrameError(f"{NAME}: snapshot URL {url!r} has no instId parameter")
    try:
        return normalized_symbol(inst_ids[0])
    except FrameError as exc:
        raise FrameError(f"{NAME}: snapshot URL {url!r}: {exc}") from None


def map_snapshot(body: str | bytes, symbol: str, recv_ts: int) -> BookUpdate:
    """`{"code": "0", "msg": "", "data": [{"asks", "bids", "ts", "seqId"}]}` -> a snapshot.

    OKX answers errors with HTTP 200 and a non-zero `code` (51001: no such instrument), so
    the code is checked before the data. `seqId` is what OKX's changelog joins the updates
    on; a body without it still syncs the book, and the next update's prevSeqId then
    anchors the chain. The snapshot carries no checksum.
    """
    try:
        return _map_snapshot(body, symbol, recv_ts)
    except FrameError as exc:
        raise FrameError(f"{NAME}: {exc}") from None


def _map_snapshot(body: str | bytes, symbol: str, recv_ts: int) -> BookUpdate:
    what = "books snapshot"
    message = load_object(body)
    code = field(message, "code", what)
    if code != "0" and (type(code) is not int or code != 0):
        raise FrameError(f"{what}: error {code}: {message.get('msg')}")
    items = _objects(message, what)
    if len(items) != 1:
        raise FrameError(f"{what}: data holds {len(items)} books, expected one")
    item = items[0]
    bids, bid_texts = _book_side(item, "bids", what)
    asks, ask_texts = _book_side(item, "asks", what)
    return BookUpdate(
        NAME,
        symbol,
        _millis(item, "ts", what),
        recv_ts,
        bids,
        asks,
        is_snapshot=True,
        last_seq=_rest_seq_id(item, what),
        bid_texts=bid_texts,
        ask_texts=ask_texts,
    )


def _rest_seq_id(item: JsonObject, what: str) -> int | None:
    """REST writes most numbers as strings: seqId is read as an integer or a digit string."""
    value = item.get("seqId")
    if value is None:
        return None
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    if type(value) is int and value >= 0:
        return value
    raise FrameError(f"{what}: seqId {show(value)} is not a sequence id")


# --- subscribe rules -----------------------------------------------------------------------


def _endpoint(channel: Channel) -> str:
    return BUSINESS_PATH if channel in _BUSINESS_CHANNELS else PUBLIC_PATH


def split(subscription: Subscription) -> list[Subscription]:
    """Candles on `/business`, the rest on `/public`; a part with nothing to subscribe (funding
    of spot symbols only) is dropped, since OKX closes a connection that subscribes nothing."""
    public = tuple(c for c in subscription.channels if _endpoint(c) == PUBLIC_PATH)
    business = tuple(c for c in subscription.channels if _endpoint(c) == BUSINESS_PATH)
    parts = [Subscription(subscription.symbols, channels) for channels in (public, business)]
    return [part for part in parts if part.channels and _args(part)]


def connect_url(base: str, subscription: Subscription) -> str:
    """`<base>/public` or `<base>/business`, by the channels (see `split`)."""
    paths = {_endpoint(channel) for channel in subscription.channels}
    if len(paths) > 1:
        raise ConfigError(
            f"{NAME}: channels {', '.join(subscription.channels)} are served on different "
            f"endpoints ({PUBLIC_PATH}, {BUSINESS_PATH}): split the subscription first"
        )
    root = base.rstrip("/")
    for path in (PUBLIC_PATH, BUSINESS_PATH):
        root = root.removesuffix(path)  # a configured endpoint URL is taken as its base
    return root + (paths.pop() if paths else PUBLIC_PATH)


def _args(subscription: Subscription) -> list[JsonObject]:
    for channel in subscription.channels:
        if channel not in CHANNELS:
            raise ConfigError(
                f"{NAME}: channel {channel!r} is not offered: expected one of "
                f"{', '.join(sorted(CHANNELS))}"
            )
    return [
        {"channel": _FEED_CHANNELS[channel], "instId": native_symbol(symbol)}
        for symbol in subscription.symbols
        for channel in subscription.channels
        if channel != "funding" or parse_symbol(symbol).perp  # spot has no funding rate
    ]


def subscribe_messages(subscription: Subscription) -> list[str]:
    """`{"op": "subscribe", "args": [...]}` requests of at most SUBSCRIBE_MAX_BYTES each."""
    messages: list[str] = []
    chunk: list[bytes] = []
    size = 0
    envelope = len(_request("subscribe", []))
    for arg in _args(subscription):
        encoded = orjson.dumps(arg)
        if chunk and envelope + size + len(encoded) + len(chunk) > SUBSCRIBE_MAX_BYTES:
            messages.append(_request("subscribe", chunk))
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded)
    if chunk:
        messages.append(_request("subscribe", chunk))
    return messages


def _request(op: str, encoded_args: list[bytes]) -> str:
    return f'{{"op":"{op}","args":[{b",".join(encoded_args).decode()}]}}'


def resubscribe_book(symbol: str) -> list[str]:
    """Unsubscribe and subscribe the symbol's book: OKX answers with a fresh snapshot."""
    arg = [orjson.dumps({"channel": _FEED_CHANNELS["books"], "instId": native_symbol(symbol)})]
    return [_request("unsubscribe", arg), _request("subscribe", arg)]


OKX: Final = Exchange(
    name=NAME,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    make_mapper=make_mapper,
    sequencing=Sequencing.PREV_LAST,  # prevSeqId == the previous seqId (equal: no change)
    channels=CHANNELS,
    # OKX closes a connection that received nothing for 30 s; it answers the text `ping`.
    ping_message="ping",
    ping_interval_s=20.0,
    max_messages_per_s=3.0,  # OKX's documented subscribe rate
    # OKX documents no topic cap per connection; this keeps one connection's pushes moderate.
    max_streams_per_connection=200,
    # The feed stops sending a first book snapshot in August 2026: books start from REST
    # (where a rest_url is configured; else resubscribing, which works while it still does).
    snapshot_requests=snapshot_requests,
    map_snapshot=map_snapshot,
    snapshot_symbol=snapshot_symbol,
    resubscribe_book=resubscribe_book,
    split=split,
    checksum=checksum,
    checksum_depth=CHECKSUM_DEPTH,
    book_depth_limit=BOOK_DEPTH,
)

__all__ = [
    "OKX",
    "OkxMapper",
    "checksum",
    "connect_url",
    "make_mapper",
    "map_snapshot",
    "native_symbol",
    "normalized_symbol",
    "resubscribe_book",
    "snapshot_requests",
    "snapshot_symbol",
    "split",
    "subscribe_messages",
]
