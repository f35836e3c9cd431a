"""Binance spot and USD-M futures: the pure frame mapper `(frame, recv_ts) -> items`.

The combined-stream endpoint (`/stream`) wraps each payload as `{"stream": ..., "data": ...}`;
raw payloads are accepted too, so recordings from either endpoint map alike. What differs
between the markets comes in a `Market` value (`markets.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import msgspec

from marketstream.schemas.records import (
    Candle,
    Funding,
    Instrument,
    Liquidation,
    Quote,
    Trade,
)
from marketstream.venues.base.contracts import COINS, SizeRule, size_rule
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, in_venue
from marketstream.venues.base.parsing import (
    NS_PER_MS,
    JsonObject,
    converted,
    load_object,
    mapping,
    millis,
    show,
)
from marketstream.venues.base.symbols import joined_symbol
from marketstream.venues.binance.markets import Market
from marketstream.venues.binance.messages import (
    SPOT_TAGS,
    USDM_TAGS,
    AggTrade,
    BookTicker,
    DepthUpdate,
    ForceOrder,
    Kline,
    MarkPrice,
    RawTrade,
    SpotBookTicker,
    SpotCombined,
    SpotEvent,
    UsdmCombined,
    UsdmEvent,
)

SYMBOL_CACHE_SIZE: Final = 4096  # native names remembered per market without metadata


def native_symbol(symbol: str) -> str:
    """BTC-USDT -> BTCUSDT, BTC-USDT-PERP -> BTCUSDT (the market tells spot from perpetual)."""
    return joined_symbol(symbol)


@dataclass(frozen=True, slots=True)
class Listed:
    """One native symbol the mapper knows: its normalized name and its size rule (from the
    instrument list, else the unit the exchange documents for the endpoint)."""

    symbol: str
    rule: SizeRule


Handler = Callable[["BinanceMapper", Any, int], Item | None]

# The decoders of the hot path; lax, so that decimal strings become floats in C.
_USDM_FRAME: Final = msgspec.json.Decoder(UsdmCombined, strict=False)
_SPOT_FRAME: Final = msgspec.json.Decoder(SpotCombined)
_SPOT_EVENT: Final = msgspec.json.Decoder(SpotEvent, strict=False)
_SPOT_TICKER: Final = msgspec.json.Decoder(SpotBookTicker, strict=False)
_NOT_DECODED: Final = (msgspec.ValidationError, msgspec.DecodeError)


@dataclass(frozen=True, slots=True)
class BinanceMapper:
    """Maps one frame to items; holds only the market and its known native names."""

    market: Market
    handlers: Mapping[type, Handler]  # message Struct -> its handler
    listed: Mapping[str, Listed]  # native -> what it is, read-only
    name: str = field(init=False)  # the market's name, read for every record
    perp: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.market.name)
        object.__setattr__(self, "perp", self.market.perp)

    def __call__(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        """A combined-stream frame decodes straight into its message Struct; anything else
        (replies, errors, raw payloads, bad frames) is read by `_other`, which maps it or
        names what is wrong."""
        try:
            if self.perp:
                event: Any = _USDM_FRAME.decode(frame).data
            else:
                combined = _SPOT_FRAME.decode(frame)
                is_ticker = combined.stream.endswith("@bookTicker")
                event = (_SPOT_TICKER if is_ticker else _SPOT_EVENT).decode(combined.data)
        except _NOT_DECODED:
            event = self._other(frame)
            if event is None:
                return []
        try:
            item = self.handlers[type(event)](self, event, recv_ts)
        except FrameError as exc:
            raise in_venue(self.name, exc) from None
        return [] if item is None else [item]

    def _other(self, frame: str | bytes) -> Any:
        """The message of a frame the fast decoders refused, or None for a reply to a
        request; FrameError naming what is wrong when it is none of the market's messages."""
        try:
            message = load_object(frame)
            stream = message.get("stream")
            data = message if stream is None else mapping(message, "data", "combined stream")
            event = data.get("e")
            if event is None:
                return self._untyped(data, stream)
            if type(event) is not str or event not in self.tags:
                raise FrameError(f"unknown event type {show(event)}")
            return converted(data, self.events, event)
        except FrameError as exc:
            raise in_venue(self.name, exc) from None

    @property
    def tags(self) -> frozenset[str]:
        return USDM_TAGS if self.market.perp else SPOT_TAGS

    @property
    def events(self) -> Any:
        return UsdmEvent if self.market.perp else SpotEvent

    def _untyped(self, data: JsonObject, stream: object) -> SpotBookTicker | None:
        """Replies to requests, errors, and the spot bookTicker, which has no event type."""
        if "result" in data and "id" in data:
            return None  # SUBSCRIBE / LIST_SUBSCRIPTIONS acknowledged
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
            ticker: SpotBookTicker = converted(data, SpotBookTicker, "bookTicker")
            return ticker
        raise FrameError(f"no event type 'e' in a frame with fields {sorted(data)[:20]}")

    def known(self, native: str, what: str) -> Listed:
        listed = self.listed.get(native)
        if listed is None:
            raise self.unknown(native, what)
        return listed

    def unknown(self, native: str, what: str) -> FrameError:
        return FrameError(
            f"{what}: symbol {native!r} is neither configured nor in {self.name}'s "
            "instrument list (`marketstream instruments refresh`)"
        )


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


def _agg_trade(m: BinanceMapper, ev: AggTrade, recv_ts: int) -> Trade:
    listed = m.listed.get(ev.s)  # `known`, inlined on the hot paths
    if listed is None:
        raise m.unknown(ev.s, "aggTrade")
    return _trade_of(m, listed, ev, str(ev.a), recv_ts)


def _trade(m: BinanceMapper, ev: RawTrade, recv_ts: int) -> Trade:
    listed = m.known(ev.s, "trade")
    return _trade_of(m, listed, ev, str(ev.t), recv_ts)


def _trade_of(
    m: BinanceMapper, listed: Listed, ev: AggTrade | RawTrade, trade_id: str, recv_ts: int
) -> Trade:
    """`aggTrade` and `trade` differ only in the key of their id (`a` and `t`)."""
    rule = listed.rule
    price, size = ev.p, ev.q
    return Trade(
        m.name,
        listed.symbol,
        ev.T * NS_PER_MS,
        recv_ts,
        trade_id,
        price,
        size if rule.unit else rule.size(size, price),
        "sell" if ev.m else "buy",  # buyer is the maker: the taker sold
    )


def _book_ticker(m: BinanceMapper, ev: BookTicker | SpotBookTicker, recv_ts: int) -> Quote:
    """Spot bookTicker carries no time at all: the receive time is the best there is."""
    listed = m.listed.get(ev.s)
    if listed is None:
        raise m.unknown(ev.s, "bookTicker")
    rule = listed.rule
    t = ev.T if ev.T is not None else ev.E
    bid_px, bid_sz, ask_px, ask_sz = ev.b, ev.B, ev.a, ev.A
    if not rule.unit:
        bid_sz, ask_sz = rule.size(bid_sz, bid_px), rule.size(ask_sz, ask_px)
    return Quote(
        m.name,
        listed.symbol,
        recv_ts if t is None else t * NS_PER_MS,
        recv_ts,
        bid_px,
        bid_sz,
        ask_px,
        ask_sz,
    )


def _kline(m: BinanceMapper, ev: Kline, recv_ts: int) -> Candle:
    listed = m.known(ev.s, "kline")
    rule = listed.rule
    k = ev.k
    volume = k.v if rule.unit else rule.size(k.v, k.c)  # no inverse contract here: a factor
    return Candle(m.name, listed.symbol, k.i, k.t * NS_PER_MS, k.o, k.h, k.l, k.c, volume, k.n, k.x)


def _depth_update(m: BinanceMapper, ev: DepthUpdate, recv_ts: int) -> BookUpdate:
    what = "depthUpdate"
    listed = m.known(ev.s, what)
    rule = listed.rule
    perp = m.market.perp
    if perp and ev.pu is None:
        raise FrameError(f"{what}: field 'pu' is missing")
    return BookUpdate(
        m.name,
        listed.symbol,
        (ev.T if ev.T is not None else ev.E) * NS_PER_MS,
        recv_ts,
        rule.levels(ev.b),
        rule.levels(ev.a),
        is_snapshot=False,
        first_seq=ev.U,
        last_seq=ev.u,
        prev_seq=ev.pu if perp else None,
    )


def _mark_price(m: BinanceMapper, ev: MarkPrice, recv_ts: int) -> Funding:
    return Funding(
        m.name,
        m.known(ev.s, "markPriceUpdate").symbol,
        ev.E * NS_PER_MS,
        ev.r,
        ev.p,
        ev.i,
        ev.T * NS_PER_MS or None,  # a quarterly contract has no next funding: T is 0
    )


def _force_order(m: BinanceMapper, ev: ForceOrder, recv_ts: int) -> Liquidation | None:
    """A liquidation order (`<symbol>@forceOrder`, `!forceOrder@arr`): its side `S` (a long
    liquidated sells), and what it filled: `z`, the accumulated filled quantity, at `ap`, the
    average fill price. Binance pushes the latest state of the order once per second, so `z`
    and `ap` are the liquidation as executed; `q`/`p` are the order's quantity and limit
    price (not what traded) and `l` only the last fill. Nothing filled yet: no record."""
    what = "forceOrder"
    order = ev.o
    listed = m.known(order.s, what)
    filled, last = order.z, order.l
    if last > filled:
        raise FrameError(f"{what}: last fill l {last} exceeds the accumulated fill z {filled}")
    if filled == 0:
        return None
    price = order.ap
    rule = listed.rule
    return Liquidation(
        m.name,
        listed.symbol,
        order.T * NS_PER_MS,
        recv_ts,
        "sell" if order.S == "SELL" else "buy",
        price,
        filled if rule.unit else rule.size(filled, price),
    )


_SPOT_HANDLERS: Final[Mapping[type, Handler]] = MappingProxyType(
    {
        AggTrade: _agg_trade,
        RawTrade: _trade,
        BookTicker: _book_ticker,
        SpotBookTicker: _book_ticker,
        Kline: _kline,
        DepthUpdate: _depth_update,
    }
)
_USDM_HANDLERS: Final[Mapping[type, Handler]] = MappingProxyType(
    {**_SPOT_HANDLERS, MarkPrice: _mark_price, ForceOrder: _force_order}
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
