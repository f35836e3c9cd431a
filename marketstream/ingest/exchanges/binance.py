"""Binance spot and USD-M futures: frame mappers, subscribe rules and REST book snapshots.

Both markets speak the same stream protocol; they differ in event details (USD-M stamps
bookTicker and depth with a transaction time `T` and links depth updates with `pu`), in
limits and in the REST path of book snapshots. One `_Market` value holds those differences.

The combined-stream endpoint (`/stream`) wraps each payload as `{"stream": ..., "data": ...}`;
raw payloads are accepted too, so recordings from either endpoint map alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qs, urlsplit

import orjson

from marketstream.errors import ConfigError
from marketstream.ingest.events import BookUpdate, FrameError, Item
from marketstream.ingest.exchange import Exchange, Sequencing, SnapshotRequest, Subscription
from marketstream.ingest.exchanges.parsing import (
    JsonObject,
    connect_to_base,
    field,
    flag,
    integer,
    levels,
    load_object,
    mapping,
    millis,
    number,
    show,
    text,
)
from marketstream.schemas.instruments import Channel, parse_symbol
from marketstream.schemas.records import Candle, Funding, Quote, Trade

# Quote assets a native symbol may end in; the longest match wins (BTCFDUSD is BTC-FDUSD).
# Only quotes that cannot be mistaken for the tail of a real pair are listed: AEUR would
# turn ADAEUR (ADA-EUR) into AD-AEUR, so it is left out.
QUOTE_ASSETS: Final = (
    "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "XRP", "TRX",
    "DOGE", "EUR", "TRY", "GBP", "AUD", "BRL", "RUB", "UAH", "ZAR", "NGN", "PLN", "RON", "ARS",
    "JPY", "MXN", "COP", "CZK", "IDRT", "BIDR", "BKRW", "BVND", "PAX", "UST", "VAI",
)  # fmt: skip
_QUOTES_BY_LENGTH: Final = tuple(
    (length, frozenset(q for q in QUOTE_ASSETS if len(q) == length))
    for length in sorted({len(q) for q in QUOTE_ASSETS}, reverse=True)
)
SYMBOL_CACHE_SIZE: Final = 4096  # native symbols whose split is remembered, per market
SUBSCRIBE_CHUNK: Final = 100  # streams per SUBSCRIBE message
SNAPSHOT_LIMIT: Final = 1000  # levels per side in a REST snapshot

_STREAMS: Final[Mapping[Channel, str]] = MappingProxyType(
    {
        "trades": "aggTrade",
        "quotes": "bookTicker",
        "candles": "kline_1m",
        "books": "depth@100ms",
        "funding": "markPrice@1s",
    }
)


def native_symbol(symbol: str) -> str:
    """BTC-USDT -> BTCUSDT, BTC-USDT-PERP -> BTCUSDT (the market tells spot from perpetual)."""
    instrument = parse_symbol(symbol)
    return f"{instrument.base}{instrument.quote}"


def normalized_symbol(native: str, perp: bool) -> str:
    """Split a native symbol by its longest known quote asset: NKNUSDT -> NKN-USDT."""
    if perp and "_" in native:
        raise FrameError(f"symbol {native!r}: delivery contracts are not supported")
    for length, quotes in _QUOTES_BY_LENGTH:
        if len(native) > length and native[-length:] in quotes:
            return f"{native[:-length]}-{native[-length:]}{'-PERP' if perp else ''}"
    raise FrameError(f"symbol {native!r} does not end in a known quote asset")


# The split of a native symbol never changes: remember it rather than redo it every frame
# (a bounded memo of a pure function; a symbol that fails to split is not remembered).
_spot_symbol: Final = lru_cache(maxsize=SYMBOL_CACHE_SIZE)(partial(normalized_symbol, perp=False))
_perp_symbol: Final = lru_cache(maxsize=SYMBOL_CACHE_SIZE)(partial(normalized_symbol, perp=True))

Handler = Callable[["BinanceMapper", JsonObject, int], Item]


@dataclass(frozen=True, slots=True)
class BinanceMapper:
    """Maps one frame to items; holds only the market and the configured native names."""

    market: _Market
    symbols: Mapping[str, str]  # native -> normalized, read-only

    def __call__(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        try:
            message = load_object(frame)
            stream = message.get("stream")
            data = message if stream is None else mapping(message, "data", "combined stream")
            event = data.get("e")
            if event is None:
                return self._untyped(data, stream, recv_ts)
            try:
                handler = self.market.handlers[event]
            except (KeyError, TypeError):  # TypeError: an event type that is not even a string
                raise FrameError(f"unknown event type {show(event)}") from None
            return [handler(self, data, recv_ts)]
        except FrameError as exc:
            raise FrameError(f"{self.market.name}: {exc}") from None

    def _untyped(self, data: JsonObject, stream: object, recv_ts: int) -> list[Item]:
        """Replies to requests, errors, and the spot bookTicker, which has no event type."""
        if "result" in data and "id" in data:
            return []  # SUBSCRIBE / LIST_SUBSCRIPTIONS acknowledged
        if "error" in data:
            error = data["error"]
            if type(error) is dict:
                raise FrameError(f"error {error.get('code')}: {error.get('msg')}")
            raise FrameError(f"error: {show(error)}")
        if "code" in data and "msg" in data:
            raise FrameError(f"error {data['code']}: {data['msg']}")
        if (type(stream) is str and stream.endswith("@bookTicker")) or (
            "u" in data and "b" in data and "a" in data
        ):
            return [_book_ticker(self, data, recv_ts)]
        raise FrameError(f"no event type 'e' in a frame with fields {sorted(data)[:20]}")

    def symbol(self, data: JsonObject, what: str) -> str:
        native = text(data, "s", what)
        symbol = self.symbols.get(native)
        return symbol if symbol is not None else self.market.normalize(native)


def _event_time(data: JsonObject, what: str) -> int:
    """The transaction time `T` where the event carries one (USD-M), else the event time."""
    return millis(data, "T" if "T" in data else "E", what)


def _trade_of(what: str, id_key: str) -> Handler:
    """`aggTrade` and `trade` differ only in the key of their id (`a` and `t`)."""

    def trade(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Trade:
        return Trade(
            m.market.name,
            m.symbol(data, what),
            millis(data, "T", what),
            recv_ts,
            str(field(data, id_key, what)),
            number(data, "p", what),
            number(data, "q", what),
            "sell" if flag(data, "m", what) else "buy",  # buyer is the maker: the taker sold
        )

    return trade


_agg_trade = _trade_of("aggTrade", "a")
_trade = _trade_of("trade", "t")


def _book_ticker(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Quote:
    """Spot bookTicker carries no time at all: the receive time is the best there is."""
    what = "bookTicker"
    ts = _event_time(data, what) if "T" in data or "E" in data else recv_ts
    return Quote(
        m.market.name,
        m.symbol(data, what),
        ts,
        recv_ts,
        number(data, "b", what),
        number(data, "B", what),
        number(data, "a", what),
        number(data, "A", what),
    )


def _kline(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Candle:
    what = "kline"
    k = mapping(data, "k", what)
    return Candle(
        m.market.name,
        m.symbol(data, what),
        text(k, "i", what),
        millis(k, "t", what),
        number(k, "o", what),
        number(k, "h", what),
        number(k, "l", what),
        number(k, "c", what),
        number(k, "v", what),
        integer(k, "n", what),
        flag(k, "x", what),
    )


def _depth_update(m: BinanceMapper, data: JsonObject, recv_ts: int) -> BookUpdate:
    what = "depthUpdate"
    return BookUpdate(
        m.market.name,
        m.symbol(data, what),
        _event_time(data, what),
        recv_ts,
        levels(data, "b", what),
        levels(data, "a", what),
        is_snapshot=False,
        first_seq=integer(data, "U", what),
        last_seq=integer(data, "u", what),
        prev_seq=integer(data, "pu", what) if m.market.perp else None,
    )


def _mark_price(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Funding:
    what = "markPriceUpdate"
    return Funding(
        m.market.name,
        m.symbol(data, what),
        millis(data, "E", what),
        number(data, "r", what),
        number(data, "p", what),
        number(data, "i", what),
        millis(data, "T", what),
    )


_SPOT_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {
        "aggTrade": _agg_trade,
        "trade": _trade,
        "bookTicker": _book_ticker,
        "kline": _kline,
        "depthUpdate": _depth_update,
    }
)
_USDM_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {**_SPOT_HANDLERS, "markPriceUpdate": _mark_price}
)


@dataclass(frozen=True, slots=True)
class _Market:
    """What differs between spot and USD-M; its methods are the `Exchange` rules."""

    name: str
    perp: bool
    channels: frozenset[Channel]
    handlers: Mapping[str, Handler]
    depth_path: str  # REST order book snapshot
    normalize: Callable[[str], str]  # an unconfigured native symbol -> normalized (cached)

    def native(self, symbol: str) -> str:
        """The native name of a configured symbol, refusing the other market's symbols."""
        if parse_symbol(symbol).perp != self.perp:
            kind, example = (
                ("perpetual swaps", "BTC-USDT-PERP") if self.perp else ("spot", "BTC-USDT")
            )
            raise ConfigError(
                f"{self.name}: symbol {symbol!r} is not listed here: {self.name} lists "
                f"{kind} symbols like {example}"
            )
        return native_symbol(symbol)

    def make_mapper(self, symbols: Sequence[str]) -> BinanceMapper:
        natives = {self.native(symbol): symbol for symbol in symbols}
        return BinanceMapper(self, MappingProxyType(natives))

    def streams(self, subscription: Subscription) -> list[str]:
        for channel in subscription.channels:
            if channel not in self.channels:
                raise ConfigError(
                    f"{self.name}: channel {channel!r} is not offered: expected one of "
                    f"{', '.join(sorted(self.channels))}"
                )
        return [
            f"{self.native(symbol).lower()}@{_STREAMS[channel]}"
            for symbol in subscription.symbols
            for channel in subscription.channels
        ]

    def subscribe_messages(self, subscription: Subscription) -> list[str]:
        """SUBSCRIBE requests of at most SUBSCRIBE_CHUNK streams each, numbered from 1."""
        streams = self.streams(subscription)
        chunks = [
            streams[start : start + SUBSCRIBE_CHUNK]
            for start in range(0, len(streams), SUBSCRIBE_CHUNK)
        ]
        return [
            orjson.dumps({"method": "SUBSCRIBE", "params": chunk, "id": request_id}).decode()
            for request_id, chunk in enumerate(chunks, start=1)
        ]

    def snapshot_requests(self, rest_base: str, symbols: Sequence[str]) -> list[SnapshotRequest]:
        base = rest_base.rstrip("/")
        return [
            SnapshotRequest(
                symbol,
                f"{base}{self.depth_path}?symbol={self.native(symbol)}&limit={SNAPSHOT_LIMIT}",
            )
            for symbol in symbols
        ]

    def snapshot_symbol(self, url: str) -> str:
        """The symbol a snapshot URL asks for, so that recorded snapshots normalize offline."""
        natives = parse_qs(urlsplit(url).query).get("symbol")
        if not natives:
            raise FrameError(f"{self.name}: snapshot URL {url!r} has no symbol parameter")
        return normalized_symbol(natives[0], self.perp)

    def map_snapshot(self, body: str | bytes, symbol: str, recv_ts: int) -> BookUpdate:
        try:
            return self._map_snapshot(body, symbol, recv_ts)
        except FrameError as exc:
            raise FrameError(f"{self.name}: {exc}") from None

    def _map_snapshot(self, body: str | bytes, symbol: str, recv_ts: int) -> BookUpdate:
        what = "depth snapshot"
        data = load_object(body)
        if "code" in data and "msg" in data:
            raise FrameError(f"error {data['code']}: {data['msg']}")
        ts = _event_time(data, what) if "T" in data or "E" in data else recv_ts
        return BookUpdate(
            self.name,
            symbol,
            ts,
            recv_ts,
            levels(data, "bids", what),
            levels(data, "asks", what),
            is_snapshot=True,
            last_seq=integer(data, "lastUpdateId", what),
        )

    def exchange(
        self, sequencing: Sequencing, max_messages_per_s: float, max_streams: int
    ) -> Exchange:
        return Exchange(
            name=self.name,
            connect_url=connect_to_base,
            subscribe_messages=self.subscribe_messages,
            make_mapper=self.make_mapper,
            sequencing=sequencing,
            channels=self.channels,
            ping_message=None,  # Binance pings at the WebSocket level; the client pongs
            max_messages_per_s=max_messages_per_s,
            max_streams_per_connection=max_streams,
            snapshot_requests=self.snapshot_requests,
            map_snapshot=self.map_snapshot,
            snapshot_symbol=self.snapshot_symbol,
        )


_SPOT_CHANNELS: Final[frozenset[Channel]] = frozenset(("trades", "quotes", "candles", "books"))

BINANCE: Final = _Market(
    name="binance",
    perp=False,
    channels=_SPOT_CHANNELS,
    handlers=_SPOT_HANDLERS,
    depth_path="/api/v3/depth",
    normalize=_spot_symbol,
).exchange(Sequencing.FIRST_LAST, max_messages_per_s=5, max_streams=1024)

BINANCE_USDM: Final = _Market(
    name="binance-usdm",
    perp=True,
    channels=_SPOT_CHANNELS | {"funding"},
    handlers=_USDM_HANDLERS,
    depth_path="/fapi/v1/depth",
    normalize=_perp_symbol,
).exchange(Sequencing.PREV_LAST, max_messages_per_s=10, max_streams=200)
