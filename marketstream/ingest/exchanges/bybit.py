"""Bybit v5 public feed, spot and USDT linear perpetuals: frame mappers and subscribe rules.

Spot and linear perps are served on separate endpoints (`<base>/spot`, `<base>/linear`) that
share one topic namespace: `publicTrade.BTCUSDT` is the spot pair on one and the perpetual
on the other. So a subscription is split by market (`split`), each part connects to its
market's URL, and each mapper is made for one market: live from the configured symbols,
offline from the recorded URL (`mapper_for_recording`).

Quotes come from `orderbook.1` rather than `tickers`: depth 1 sends only snapshots, while
`tickers` sends deltas with just the changed fields, which a pure mapper cannot complete.
`tickers` serves funding alone, and only on linear. Books come from `orderbook.50`, whose
update id `u` goes up by one per delta; a snapshot (also `u` = 1 after a Bybit restart)
replaces the book. Bybit sends no checksum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson

from marketstream.errors import ConfigError
from marketstream.ingest.events import BookUpdate, FrameError, Item, Mapper
from marketstream.ingest.exchange import Exchange, Sequencing, Subscription
from marketstream.ingest.exchanges.binance import native_symbol, normalized_symbol
from marketstream.ingest.exchanges.parsing import (
    JsonObject,
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
from marketstream.schemas.records import Candle, Funding, Level, Quote, Side, Trade

NAME: Final = "bybit"
CHANNELS: Final[frozenset[Channel]] = frozenset(("trades", "quotes", "candles", "books", "funding"))
BOOK_DEPTH: Final = 50  # levels per side of the `orderbook.50` topic
PING: Final = '{"op":"ping"}'
PING_INTERVAL_S: Final = 20.0  # Bybit's advice; without pings the server drops the socket
# Bybit caps a public connection's topics at 21,000 characters of "args"; 400 topics of up
# to ~40 characters each ("orderbook.50.1000000BABYDOGEUSDT" and quoting) stay below it.
MAX_TOPICS_PER_CONNECTION: Final = 400
# No documented rate for public subscribe requests; this keeps well clear of a flood.
MAX_MESSAGES_PER_S: Final = 10.0

_TOPICS: Final[Mapping[Channel, str]] = MappingProxyType(
    {
        "trades": "publicTrade",
        "quotes": "orderbook.1",
        "candles": "kline.1",
        "books": f"orderbook.{BOOK_DEPTH}",
        "funding": "tickers",
    }
)
_SIDES: Final[Mapping[str, Side]] = MappingProxyType({"Buy": "buy", "Sell": "sell"})
# Kline intervals as Bybit names them -> the normalized interval.
_INTERVALS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "120": "2h",
        "240": "4h", "360": "6h", "720": "12h", "D": "1d", "W": "1w",
    }
)  # fmt: skip
# Answers to our own requests: nothing to publish unless they report a failure.
_CONTROL_OPS: Final = frozenset(("subscribe", "unsubscribe", "ping", "pong"))


# --- symbols ---------------------------------------------------------------------------------


def _linear_native_to_symbol(native: str) -> str:
    """BTCUSDT -> BTC-USDT-PERP; the linear endpoint's other contracts are refused by name."""
    if native.endswith("PERP"):
        raise FrameError(f"symbol {native!r}: USDC perpetuals are not supported")
    if "-" in native:
        raise FrameError(f"symbol {native!r}: dated futures are not supported")
    return normalized_symbol(native, True)


def _spot_native_to_symbol(native: str) -> str:
    return normalized_symbol(native, False)


# --- the mapper ------------------------------------------------------------------------------

Handler = Callable[["BybitMapper", JsonObject, str, int], list[Item]]


@dataclass(frozen=True, slots=True)
class BybitMapper:
    """Maps one frame of one market to items; holds only read-only data."""

    market: _Market
    symbols: Mapping[str, str]  # native -> normalized, read-only

    def __call__(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        try:
            return self._map(frame, recv_ts)
        except FrameError as exc:
            raise FrameError(f"{NAME} {self.market.name}: {exc}") from None

    def _map(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        message = load_object(frame)
        topic = message.get("topic")
        if topic is None:
            return _control(message)
        if type(topic) is not str:
            raise FrameError(f"topic {show(topic)} is not a string")
        # `kind[.param].NATIVE`: the symbol is the topic's last part, one per message.
        kind, _, rest = topic.partition(".")
        native = rest.rpartition(".")[2]
        handler = self.market.handlers.get(kind)
        if handler is None or not native:
            raise FrameError(f"unknown topic {topic!r}")
        return handler(self, message, native, recv_ts)

    def symbol(self, native: str) -> str:
        symbol = self.symbols.get(native)
        return symbol if symbol is not None else self.market.to_symbol(native)


def _control(message: JsonObject) -> list[Item]:
    """Subscription answers and pongs; a failed request is an error, never a silent drop."""
    op = message.get("op")
    if message.get("success") is False:
        raise FrameError(f"{op or 'request'} failed: {message.get('ret_msg')}")
    if op in _CONTROL_OPS:
        return []
    raise FrameError(f"no topic and no known op in a frame with fields {sorted(message)[:20]}")


def _records(message: JsonObject, what: str) -> list[JsonObject]:
    """`data` as a list of JSON objects (trades, klines)."""
    data = field(message, "data", what)
    if type(data) is not list or not all(type(entry) is dict for entry in data):
        raise FrameError(f"{what}: data {show(data)} is not a list of JSON objects")
    return data


def _public_trade(m: BybitMapper, message: JsonObject, native: str, recv_ts: int) -> list[Item]:
    what = "publicTrade"
    symbol = m.symbol(native)
    trades: list[Item] = []
    for trade in _records(message, what):
        taker = text(trade, "S", what)
        side = _SIDES.get(taker)
        if side is None:
            raise FrameError(f"{what}: S {show(taker)} is not 'Buy' or 'Sell'")
        trades.append(
            Trade(
                NAME,
                symbol,
                millis(trade, "T", what),
                recv_ts,
                str(field(trade, "i", what)),
                number(trade, "p", what),
                number(trade, "v", what),
                side,  # S is the taker's side
            )
        )
    return trades


def _kind(message: JsonObject, what: str) -> bool:
    """True for a snapshot, False for a delta."""
    kind = field(message, "type", what)
    if kind == "snapshot":
        return True
    if kind == "delta":
        return False
    raise FrameError(f"{what}: type {show(kind)} is not 'snapshot' or 'delta'")


def _best(data: JsonObject, key: str, what: str) -> Level:
    """The first [price, size] of a side; a quote needs both sides."""
    side = levels(data, key, what)
    if not side:
        raise FrameError(f"{what}: {key} is empty: no quote without both sides")
    return side[0]


def _orderbook(m: BybitMapper, message: JsonObject, native: str, recv_ts: int) -> list[Item]:
    """`orderbook.1` is the quotes channel, any deeper book the books channel."""
    topic = message["topic"]
    parts = topic.split(".")
    if len(parts) != 3:
        raise FrameError(f"topic {topic!r} is not orderbook.<depth>.<symbol>")
    if parts[1] == "1":
        return [_top_of_book(m, message, native, recv_ts)]
    return [_book_update(m, message, native, recv_ts)]


def _top_of_book(m: BybitMapper, message: JsonObject, native: str, recv_ts: int) -> Quote:
    """Depth 1 is always a full snapshot (re-sent unchanged after 3 quiet seconds)."""
    what = "orderbook.1"
    if not _kind(message, what):
        raise FrameError(f"{what}: a delta cannot make a quote; depth 1 sends snapshots only")
    data = mapping(message, "data", what)
    bid_px, bid_sz = _best(data, "b", what)
    ask_px, ask_sz = _best(data, "a", what)
    return Quote(
        NAME, m.symbol(native), millis(message, "ts", what), recv_ts, bid_px, bid_sz, ask_px, ask_sz
    )


def _book_update(m: BybitMapper, message: JsonObject, native: str, recv_ts: int) -> BookUpdate:
    what = "orderbook"
    is_snapshot = _kind(message, what)
    data = mapping(message, "data", what)
    # `cts` is the matching engine's time of the book; `ts` when the feed sent it.
    ts = millis(message, "cts" if "cts" in message else "ts", what)
    return BookUpdate(
        NAME,
        m.symbol(native),
        ts,
        recv_ts,
        levels(data, "b", what),
        levels(data, "a", what),
        is_snapshot=is_snapshot,
        last_seq=integer(data, "u", what),
    )


def _kline(m: BybitMapper, message: JsonObject, native: str, recv_ts: int) -> list[Item]:
    what = "kline"
    symbol = m.symbol(native)
    candles: list[Item] = []
    for kline in _records(message, what):
        bybit_interval = text(kline, "interval", what)
        interval = _INTERVALS.get(bybit_interval)
        if interval is None:
            raise FrameError(f"{what}: interval {show(bybit_interval)} is not supported")
        candles.append(
            Candle(
                NAME,
                symbol,
                interval,
                millis(kline, "start", what),
                number(kline, "open", what),
                number(kline, "high", what),
                number(kline, "low", what),
                number(kline, "close", what),
                number(kline, "volume", what),
                None,  # Bybit does not count a kline's trades
                flag(kline, "confirm", what),
            )
        )
    return candles


def _given(data: JsonObject, key: str) -> Any:
    """A ticker field's value, None where the message leaves it out (or empty): unchanged."""
    value = data.get(key)
    return None if value == "" else value


def _optional_price(data: JsonObject, key: str, what: str) -> float | None:
    return None if _given(data, key) is None else number(data, key, what)


def _optional_ms_text(data: JsonObject, key: str, what: str) -> int | None:
    """Bybit writes `nextFundingTime` as a decimal string of milliseconds."""
    value = _given(data, key)
    if value is None:
        return None
    try:
        return int(value) * 1_000_000
    except (TypeError, ValueError):
        raise FrameError(f"{what}: {key} {show(value)} is not a time in milliseconds") from None


def _tickers(m: BybitMapper, message: JsonObject, native: str, recv_ts: int) -> list[Item]:
    """Funding, when the message carries the rate: every snapshot, and deltas that change it.

    A delta without `fundingRate` changed other ticker fields only: there is no funding
    news in it, so nothing is published.
    """
    what = "tickers"
    data = mapping(message, "data", what)
    if _given(data, "fundingRate") is None:
        return []
    funding = Funding(
        NAME,
        m.symbol(native),
        millis(message, "ts", what),
        number(data, "fundingRate", what),
        _optional_price(data, "markPrice", what),
        _optional_price(data, "indexPrice", what),
        _optional_ms_text(data, "nextFundingTime", what),
    )
    return [funding]


_SPOT_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {"publicTrade": _public_trade, "orderbook": _orderbook, "kline": _kline}
)
_LINEAR_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {**_SPOT_HANDLERS, "tickers": _tickers}
)


# --- markets and exchange rules --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Market:
    """What differs between the spot and the linear endpoint."""

    name: str  # also the last part of the endpoint's path
    perp: bool
    handlers: Mapping[str, Handler]
    to_symbol: Callable[[str], str]  # native -> normalized, for symbols not configured
    topics_per_request: int  # spot accepts at most 10 args per subscribe request

    def make_mapper(self, symbols: Sequence[str]) -> BybitMapper:
        natives = {native_symbol(symbol): symbol for symbol in symbols}
        return BybitMapper(self, MappingProxyType(natives))


SPOT: Final = _Market("spot", False, _SPOT_HANDLERS, _spot_native_to_symbol, 10)
LINEAR: Final = _Market("linear", True, _LINEAR_HANDLERS, _linear_native_to_symbol, 100)
_MARKETS: Final[Mapping[str, _Market]] = MappingProxyType({"spot": SPOT, "linear": LINEAR})


def market_of(symbols: Sequence[str]) -> _Market:
    """The one market of these symbols; one connection cannot serve both."""
    kinds = {parse_symbol(symbol).perp for symbol in symbols}
    if len(kinds) != 1:
        found = "no symbols" if not kinds else f"spot and perpetual symbols {list(symbols)}"
        raise ConfigError(
            f"{NAME}: one connection serves either spot or perpetual symbols, got {found}: "
            "split the subscription by market first"
        )
    return LINEAR if kinds.pop() else SPOT


def split(subscription: Subscription) -> list[Subscription]:
    """Spot symbols and -PERP symbols on their own connections; funding on perps only."""
    spot = tuple(s for s in subscription.symbols if not parse_symbol(s).perp)
    perps = tuple(s for s in subscription.symbols if parse_symbol(s).perp)
    parts: list[Subscription] = []
    if spot:
        channels = tuple(c for c in subscription.channels if c != "funding")
        if not channels:
            raise ConfigError(
                f"{NAME}: spot symbols {list(spot)} have no channel: funding is offered for "
                "perpetual swaps only"
            )
        parts.append(Subscription(spot, channels))
    if perps:
        parts.append(Subscription(perps, subscription.channels))
    return parts


def connect_url(base: str, subscription: Subscription) -> str:
    """`<base>/spot` or `<base>/linear` by the subscription's symbols (a trailing market
    in the configured URL is replaced, so either form of the base works)."""
    market = market_of(subscription.symbols)
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last in _MARKETS:
        path = head
    return urlunsplit(parts._replace(path=f"{path}/{market.name}"))


def _topics(market: _Market, subscription: Subscription) -> list[str]:
    for channel in subscription.channels:
        if channel not in CHANNELS:
            raise ConfigError(
                f"{NAME}: channel {channel!r} is not offered: expected one of "
                f"{', '.join(sorted(CHANNELS))}"
            )
        if channel == "funding" and not market.perp:
            raise ConfigError(f"{NAME}: funding is offered for perpetual swaps only, not spot")
    return [
        f"{_TOPICS[channel]}.{native_symbol(symbol)}"
        for symbol in subscription.symbols
        for channel in subscription.channels
    ]


def _request(op: str, topics: list[str]) -> str:
    return orjson.dumps({"op": op, "args": topics}).decode()


def subscribe_messages(subscription: Subscription) -> list[str]:
    """Subscribe requests of at most the market's args per request."""
    market = market_of(subscription.symbols)
    topics = _topics(market, subscription)
    step = market.topics_per_request
    return [_request("subscribe", topics[i : i + step]) for i in range(0, len(topics), step)]


def resubscribe_book(symbol: str) -> list[str]:
    """Unsubscribe and subscribe the symbol's book again: the feed answers with a snapshot."""
    topic = f"{_TOPICS['books']}.{native_symbol(symbol)}"
    return [_request("unsubscribe", [topic]), _request("subscribe", [topic])]


def make_mapper(symbols: Sequence[str]) -> Mapper:
    """A mapper for one market's symbols: the symbols say whether BTCUSDT is spot or perp."""
    return market_of(symbols).make_mapper(symbols)


def _unknown_market(url: str) -> Mapper:
    def refuse(frame: str | bytes, recv_ts: int) -> list[Item]:
        raise FrameError(
            f"{NAME}: recorded URL {url!r} ends in neither /spot nor /linear: cannot tell "
            "spot from perpetual symbols"
        )

    return refuse


def market_of_url(url: str) -> _Market | None:
    """The market whose endpoint `url` is (its path's last part), None for another URL."""
    return _MARKETS.get(urlsplit(url).path.rstrip("/").rpartition("/")[2])


def mapper_for_recording(url: str) -> Mapper:
    """Offline: the recorded URL names the market; frames from another URL are refused."""
    market = market_of_url(url)
    return market.make_mapper(()) if market is not None else _unknown_market(url)


BYBIT: Final = Exchange(
    name=NAME,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    make_mapper=make_mapper,
    sequencing=Sequencing.INCREMENT,
    channels=CHANNELS,
    ping_message=PING,
    ping_interval_s=PING_INTERVAL_S,
    max_messages_per_s=MAX_MESSAGES_PER_S,
    max_streams_per_connection=MAX_TOPICS_PER_CONNECTION,
    resubscribe_book=resubscribe_book,
    split=split,
    mapper_for_recording=mapper_for_recording,
    # The feed keeps 50 levels a side; a level pushed out of them may get no removal.
    book_depth_limit=BOOK_DEPTH,
)
