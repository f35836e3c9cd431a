"""Bybit v5 public feed, spot and USDT linear perpetuals: the pure frame mapper.

Each mapper is made for one market (`markets.py`): live from the configured symbols, offline
from the recorded URL (`mapper_for_recording`). Quotes come from `orderbook.1` (depth 1
sends only snapshots); `tickers` serves funding alone, and only on linear. Books come from
`orderbook.50`, whose update id `u` goes up by one per delta; a snapshot (also `u` = 1 after
a Bybit restart) replaces the book. Bybit sends no checksum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from marketstream.schemas.records import Candle, Funding, Instrument, Level, Quote, Side, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, Mapper, in_venue
from marketstream.venues.base.parsing import (
    JsonObject,
    field,
    flag,
    integer,
    levels,
    load_object,
    mapping,
    millis,
    number,
    ohlcv,
    one_of,
    show,
)
from marketstream.venues.base.symbols import joined_symbol
from marketstream.venues.bybit.markets import NAME, Market, market_of, market_of_url

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


Handler = Callable[["BybitMapper", JsonObject, str, int], list[Item]]


@dataclass(frozen=True, slots=True)
class BybitMapper:
    """Maps one frame of one market to items; holds only read-only data."""

    market: Market
    handlers: Mapping[str, Handler]
    symbols: Mapping[str, str]  # native -> normalized, read-only

    def __call__(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        try:
            return self._map(frame, recv_ts)
        except FrameError as exc:
            raise in_venue(f"{NAME} {self.market.name}", exc) from None

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
        handler = self.handlers.get(kind)
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
        side = one_of(trade, "S", what, _SIDES, "'Buy' or 'Sell'")
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
        candles.append(
            Candle(
                NAME,
                symbol,
                one_of(kline, "interval", what, _INTERVALS, "supported"),
                millis(kline, "start", what),
                *ohlcv(kline, what),
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


def _market_mapper(market: Market, symbols: Sequence[str]) -> BybitMapper:
    natives = {joined_symbol(symbol): symbol for symbol in symbols}
    handlers = _LINEAR_HANDLERS if market.perp else _SPOT_HANDLERS
    return BybitMapper(market, handlers, MappingProxyType(natives))


def make_mapper(symbols: Sequence[str], instruments: Sequence[Instrument] = ()) -> Mapper:
    """A mapper for one market's symbols: the symbols say whether BTCUSDT is spot or perp."""
    return _market_mapper(market_of(symbols), symbols)


def _unknown_market(url: str) -> Mapper:
    def refuse(frame: str | bytes, recv_ts: int) -> list[Item]:
        raise FrameError(
            f"{NAME}: recorded URL {url!r} ends in neither /spot nor /linear: cannot tell "
            "spot from perpetual symbols"
        )

    return refuse


def mapper_for_recording(url: str, instruments: Sequence[Instrument] = ()) -> Mapper:
    """Offline: the recorded URL names the market; frames from another URL are refused."""
    market = market_of_url(url)
    return _market_mapper(market, ()) if market is not None else _unknown_market(url)
