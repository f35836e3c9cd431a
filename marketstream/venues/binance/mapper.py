"""Binance spot and USD-M futures: the pure frame mapper `(frame, recv_ts) -> items`.

The combined-stream endpoint (`/stream`) wraps each payload as `{"stream": ..., "data": ...}`;
raw payloads are accepted too, so recordings from either endpoint map alike. What differs
between the markets comes in a `Market` value (`markets.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from types import MappingProxyType
from typing import Final

from marketstream.schemas.records import Candle, Funding, Instrument, Quote, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, in_venue
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
    show,
    text,
)
from marketstream.venues.base.symbols import joined_symbol, split_symbol
from marketstream.venues.binance.markets import Market

SYMBOL_CACHE_SIZE: Final = 4096  # native symbols whose split is remembered, per market


def native_symbol(symbol: str) -> str:
    """BTC-USDT -> BTCUSDT, BTC-USDT-PERP -> BTCUSDT (the market tells spot from perpetual)."""
    return joined_symbol(symbol)


def normalized_symbol(native: str, perp: bool) -> str:
    """Split a native symbol by its longest known quote asset: NKNUSDT -> NKN-USDT."""
    return split_symbol(native, perp)


# The split of a native symbol never changes: remember it rather than redo it every frame
# (a bounded memo of a pure function; a symbol that fails to split is not remembered).
_spot_symbol: Final = lru_cache(maxsize=SYMBOL_CACHE_SIZE)(partial(split_symbol, perp=False))
_perp_symbol: Final = lru_cache(maxsize=SYMBOL_CACHE_SIZE)(partial(split_symbol, perp=True))

Handler = Callable[["BinanceMapper", JsonObject, int], Item]


@dataclass(frozen=True, slots=True)
class BinanceMapper:
    """Maps one frame to items; holds only the market and the configured native names."""

    market: Market
    handlers: Mapping[str, Handler]
    normalize: Callable[[str], str]  # an unconfigured native symbol -> normalized (cached)
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
                handler = self.handlers[event]
            except (KeyError, TypeError):  # TypeError: an event type that is not even a string
                raise FrameError(f"unknown event type {show(event)}") from None
            return [handler(self, data, recv_ts)]
        except FrameError as exc:
            raise in_venue(self.market.name, exc) from None

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
        return symbol if symbol is not None else self.normalize(native)


def event_time(data: JsonObject, what: str) -> int:
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
    ts = event_time(data, what) if "T" in data or "E" in data else recv_ts
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
        *ohlcv(k, what, ("o", "h", "l", "c", "v")),
        integer(k, "n", what),
        flag(k, "x", what),
    )


def _depth_update(m: BinanceMapper, data: JsonObject, recv_ts: int) -> BookUpdate:
    what = "depthUpdate"
    return BookUpdate(
        m.market.name,
        m.symbol(data, what),
        event_time(data, what),
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


def make_mapper(
    market: Market, symbols: Sequence[str], instruments: Sequence[Instrument] = ()
) -> BinanceMapper:
    """A mapper for the market's configured symbols (a symbol of the other market is a
    ConfigError); frames of other symbols are mapped too, their names split on the fly."""
    natives = {market.native(symbol): symbol for symbol in symbols}
    if market.perp:
        return BinanceMapper(market, _USDM_HANDLERS, _perp_symbol, MappingProxyType(natives))
    return BinanceMapper(market, _SPOT_HANDLERS, _spot_symbol, MappingProxyType(natives))
