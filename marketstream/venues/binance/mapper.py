"""Binance spot and USD-M futures: the pure frame mapper `(frame, recv_ts) -> items`.

The combined-stream endpoint (`/stream`) wraps each payload as `{"stream": ..., "data": ...}`;
raw payloads are accepted too, so recordings from either endpoint map alike. What differs
between the markets comes in a `Market` value (`markets.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from marketstream.schemas.records import (
    Candle,
    Funding,
    Instrument,
    Liquidation,
    Quote,
    Side,
    Trade,
)
from marketstream.venues.base.contracts import COINS, SizeRule, size_rule
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
from marketstream.venues.base.symbols import joined_symbol
from marketstream.venues.binance.markets import Market

SYMBOL_CACHE_SIZE: Final = 4096  # native names remembered per market without metadata
_ORDER_SIDES: Final[Mapping[str, Side]] = MappingProxyType({"BUY": "buy", "SELL": "sell"})


def native_symbol(symbol: str) -> str:
    """BTC-USDT -> BTCUSDT, BTC-USDT-PERP -> BTCUSDT (the market tells spot from perpetual)."""
    return joined_symbol(symbol)


@dataclass(frozen=True, slots=True)
class Listed:
    """One native symbol the mapper knows: its normalized name and its size rule (from the
    instrument list, else the unit the exchange documents for the endpoint)."""

    symbol: str
    rule: SizeRule


Handler = Callable[["BinanceMapper", JsonObject, int], Item | None]


@dataclass(frozen=True, slots=True)
class BinanceMapper:
    """Maps one frame to items; holds only the market and its known native names."""

    market: Market
    handlers: Mapping[str, Handler]
    listed: Mapping[str, Listed]  # native -> what it is, read-only

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
            item = handler(self, data, recv_ts)
            return [] if item is None else [item]
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

    def known(self, data: JsonObject, what: str) -> Listed:
        native = text(data, "s", what)
        listed = self.listed.get(native)
        if listed is None:
            raise FrameError(
                f"{what}: symbol {native!r} is neither configured nor in {self.market.name}'s "
                "instrument list (`marketstream instruments refresh`)"
            )
        return listed

    def symbol(self, data: JsonObject, what: str) -> str:
        return self.known(data, what).symbol


def rest_answer(body: str | bytes) -> JsonObject:
    """A REST answer's JSON object; Binance's error answer (`{"code": ..., "msg": ...}`) is a
    FrameError carrying both."""
    data = load_object(body)
    if "code" in data and "msg" in data:
        raise FrameError(f"error {data['code']}: {data['msg']}")
    return data


def event_time(data: JsonObject, what: str) -> int:
    """The transaction time `T` where the event carries one (USD-M), else the event time."""
    return millis(data, "T" if "T" in data else "E", what)


def _trade_of(what: str, id_key: str) -> Handler:
    """`aggTrade` and `trade` differ only in the key of their id (`a` and `t`)."""

    def trade(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Trade:
        listed = m.known(data, what)
        rule = listed.rule
        ts = millis(data, "T", what)
        price = number(data, "p", what)
        size = number(data, "q", what)
        return Trade(
            m.market.name,
            listed.symbol,
            ts,
            recv_ts,
            str(field(data, id_key, what)),
            price,
            size if rule.unit else rule.size(size, price),
            "sell" if flag(data, "m", what) else "buy",  # buyer is the maker: the taker sold
        )

    return trade


_agg_trade = _trade_of("aggTrade", "a")
_trade = _trade_of("trade", "t")


def _book_ticker(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Quote:
    """Spot bookTicker carries no time at all: the receive time is the best there is."""
    what = "bookTicker"
    ts = event_time(data, what) if "T" in data or "E" in data else recv_ts
    listed = m.known(data, what)
    rule = listed.rule
    bid_px, bid_sz = number(data, "b", what), number(data, "B", what)
    ask_px, ask_sz = number(data, "a", what), number(data, "A", what)
    if not rule.unit:
        bid_sz, ask_sz = rule.size(bid_sz, bid_px), rule.size(ask_sz, ask_px)
    return Quote(m.market.name, listed.symbol, ts, recv_ts, bid_px, bid_sz, ask_px, ask_sz)


def _kline(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Candle:
    what = "kline"
    k = mapping(data, "k", what)
    listed = m.known(data, what)
    rule = listed.rule
    open_, high, low, close, volume = ohlcv(k, what, ("o", "h", "l", "c", "v"))
    if not rule.unit:  # no inverse contract on these markets: a factor per contract
        volume = rule.size(volume, close)
    return Candle(
        m.market.name,
        listed.symbol,
        text(k, "i", what),
        millis(k, "t", what),
        open_,
        high,
        low,
        close,
        volume,
        integer(k, "n", what),
        flag(k, "x", what),
    )


def _depth_update(m: BinanceMapper, data: JsonObject, recv_ts: int) -> BookUpdate:
    what = "depthUpdate"
    listed = m.known(data, what)
    rule = listed.rule
    return BookUpdate(
        m.market.name,
        listed.symbol,
        event_time(data, what),
        recv_ts,
        rule.levels(levels(data, "b", what)),
        rule.levels(levels(data, "a", what)),
        is_snapshot=False,
        first_seq=integer(data, "U", what),
        last_seq=integer(data, "u", what),
        prev_seq=integer(data, "pu", what) if m.market.perp else None,
    )


def _mark_price(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Funding:
    what = "markPriceUpdate"
    next_ts = millis(data, "T", what)
    return Funding(
        m.market.name,
        m.symbol(data, what),
        millis(data, "E", what),
        number(data, "r", what),
        number(data, "p", what),
        number(data, "i", what),
        next_ts or None,  # a quarterly contract has no next funding: T is 0
    )


def _force_order(m: BinanceMapper, data: JsonObject, recv_ts: int) -> Liquidation | None:
    """A liquidation order (`<symbol>@forceOrder`, `!forceOrder@arr`): its side `S` (a long
    liquidated sells), and what it filled: `z`, the accumulated filled quantity, at `ap`, the
    average fill price. Binance pushes the latest state of the order once per second, so `z`
    and `ap` are the liquidation as executed; `q`/`p` are the order's quantity and limit
    price (not what traded) and `l` only the last fill. Nothing filled yet: no record."""
    what = "forceOrder"
    order = mapping(data, "o", what)
    listed = m.known(order, what)
    filled = number(order, "z", what)
    last = number(order, "l", what)
    if last > filled:
        raise FrameError(f"{what}: last fill l {last} exceeds the accumulated fill z {filled}")
    if filled == 0:
        return None
    price = number(order, "ap", what)
    rule = listed.rule
    return Liquidation(
        m.market.name,
        listed.symbol,
        millis(order, "T", what),
        recv_ts,
        one_of_side(order, what),
        price,
        filled if rule.unit else rule.size(filled, price),
    )


def one_of_side(order: JsonObject, what: str) -> Side:
    side = _ORDER_SIDES.get(text(order, "S", what))
    if side is None:
        raise FrameError(f"{what}: S {show(order['S'])} is not 'BUY' or 'SELL'")
    return side


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
    {**_SPOT_HANDLERS, "markPriceUpdate": _mark_price, "forceOrder": _force_order}
)


def listing(
    market: Market, symbols: Sequence[str], instruments: Sequence[Instrument]
) -> dict[str, Listed]:
    """Native name -> Listed, from the market's instruments and the configured symbols (whose
    native name is exact: `Market.native`). A configured symbol the metadata does not list
    counts in coins, the unit Binance documents for both markets (a USD-M contract is one
    base unit); any other name is refused (no name is guessed from a quote list)."""
    listed: dict[str, Listed] = {}
    for instrument in instruments:
        if instrument.exchange == market.name:
            listed[instrument.native_symbol] = Listed(instrument.symbol, size_rule(instrument))
    by_symbol = {entry.symbol for entry in listed.values()}
    for symbol in symbols:
        native = market.native(symbol)
        if symbol not in by_symbol:
            listed[native] = Listed(symbol, COINS)
    return listed


def make_mapper(
    market: Market, symbols: Sequence[str], instruments: Sequence[Instrument] = ()
) -> BinanceMapper:
    """A mapper for the market's configured symbols (a symbol of the other market is a
    ConfigError) and every instrument its metadata lists; frames of other symbols are refused
    with a FrameError naming them."""
    handlers = _USDM_HANDLERS if market.perp else _SPOT_HANDLERS
    return BinanceMapper(market, handlers, MappingProxyType(listing(market, symbols, instruments)))
