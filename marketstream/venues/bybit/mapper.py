"""Bybit v5 public feed, spot, linear and inverse: the frame mapper.

Each mapper is made for one market (`markets.py`): live from the configured symbols, offline
from the recorded URL (`mapper_for_recording`); native names come from the instrument
metadata and the configured symbols, never from splitting a name. Sizes are base units: spot
and linear sizes are coins already, an inverse contract is 1 USD (base = USD / price).

Quotes come from `orderbook.1`: a snapshot, then (until 2023, and on some markets still)
deltas of the top level, which the mapper applies to the top it keeps per symbol — the one
piece of state a Bybit mapper holds, so one mapper serves one connection. Books come from
`orderbook.50`, whose update id `u` goes up by one per delta; a snapshot (also `u` = 1 after
a Bybit restart) replaces the book. Bybit sends no checksum. `tickers` (derivatives) gives
funding and open interest, `allLiquidation` and the older `liquidation` topic liquidations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from types import MappingProxyType
from typing import Any, Final

import msgspec

from marketstream.schemas.records import (
    Candle,
    Funding,
    Instrument,
    Level,
    Liquidation,
    OpenInterest,
    Quote,
    Side,
    Trade,
)
from marketstream.venues.base.contracts import COINS, SizeRule, size_rule
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, Mapper, in_venue
from marketstream.venues.base.parsing import (
    NOT_TYPED,
    NS_PER_MS,
    JsonObject,
    UntypedError,
    converted,
    field,
    flag,
    integer,
    levels,
    load_object,
    mapping,
    millis,
    number,
    one_of,
    show,
    typed_int,
)
from marketstream.venues.bybit import messages
from marketstream.venues.bybit.markets import (
    NAME,
    Market,
    market_of,
    market_of_symbol,
    market_of_url,
    native,
)

SYMBOL_CACHE_SIZE: Final = 4096  # native names remembered per market without metadata
_SIDES: Final[Mapping[str, Side]] = MappingProxyType({"Buy": "buy", "Sell": "sell"})
# Bybit's liquidation `S`/`side` is the side of the liquidated POSITION ("When you receive a
# Buy update, this means that a long position has been liquidated", v5 all-liquidation docs);
# a Liquidation record carries the side of the liquidation ORDER, the opposite one (a long is
# closed by selling).
_LIQUIDATION_ORDER_SIDES: Final[Mapping[str, Side]] = MappingProxyType(
    {"Buy": "sell", "Sell": "buy"}
)
# Kline intervals as Bybit names them -> the normalized interval.
_INTERVALS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "120": "2h",
        "240": "4h", "360": "6h", "720": "12h", "D": "1d", "W": "1w",
    }
)  # fmt: skip
# Answers to our own requests: nothing to publish unless they report a failure.
_CONTROL_OPS: Final = frozenset(("subscribe", "unsubscribe", "ping", "pong"))


@dataclass(frozen=True, slots=True)
class Listed:
    """One native symbol the mapper knows: its normalized name and its size rule (from the
    instrument list, else the unit the exchange documents for the endpoint)."""

    symbol: str
    rule: SizeRule


@dataclass(slots=True)
class _Top:
    """The top level of an `orderbook.1` book as the last snapshot and deltas left it."""

    bids: dict[float, float]
    asks: dict[float, float]
    update_id: int


@dataclass(slots=True)
class _Ticker:
    """The last mark price of a derivative's ticker: an inverse open interest (USD contracts)
    is converted with it when a delta carries the count only."""

    mark_px: float


Handler = Callable[["BybitMapper", JsonObject, str, int], list[Item]]
# (mapper, the decoded push, recv_ts) -> items; UntypedError: a push to read as JSON
TypedHandler = Callable[["BybitMapper", messages.Push, int], list[Item]]
_PUSH: Final = msgspec.json.Decoder(messages.Push)
_TRADES: Final = msgspec.json.Decoder(list[messages.Trade], strict=False)
_BOOK: Final = msgspec.json.Decoder(messages.Book, strict=False)
_KLINES: Final = msgspec.json.Decoder(list[messages.Kline], strict=False)
_TICKER: Final = msgspec.json.Decoder(messages.Ticker, strict=False)
_LIQUIDATIONS: Final = msgspec.json.Decoder(list[messages.Liquidation], strict=False)


@dataclass(frozen=True, slots=True)
class BybitMapper:
    """Maps one frame of one market to items."""

    market: Market
    handlers: Mapping[str, Handler]
    listed: Mapping[str, Listed]  # native -> what it is, read-only
    tops: dict[str, _Top] = dataclass_field(default_factory=dict)  # orderbook.1, by native
    tickers: dict[str, _Ticker] = dataclass_field(default_factory=dict)

    def __call__(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        """Pushes of the typed topics decode straight into their Structs; every other frame
        (answers, the legacy `liquidation` topic, and a push the typed path refuses, which
        `_map` then explains) is read as JSON."""
        try:
            try:
                push = _PUSH.decode(frame)
                kind, _, rest = push.topic.partition(".")
                if kind == "publicTrade" and rest and "." not in rest:  # the busiest, inline
                    return _trades(self, rest, _TRADES.decode(push.data), recv_ts)
                typed = _TYPED.get(kind) if kind in self.handlers else None
                if typed is not None:
                    return typed(self, push, recv_ts)
            except NOT_TYPED:
                pass
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
        # `kind[.param].NATIVE`: the symbol is the topic's last part, one per message (a
        # native name may hold a '-', e.g. BTC-29SEP23, but never a '.').
        kind, _, rest = topic.partition(".")
        name = rest.rpartition(".")[2]
        handler = self.handlers.get(kind)
        if handler is None or not name:
            raise FrameError(f"unknown topic {topic!r}")
        return handler(self, message, name, recv_ts)

    def known(self, name: str) -> Listed:
        listed = self.listed.get(name)
        if listed is None:
            raise FrameError(
                f"symbol {name!r} is neither configured nor in the {self.market.name} "
                "instrument list (`marketstream instruments refresh`)"
            )
        return listed


def _control(message: JsonObject) -> list[Item]:
    """Subscription answers and pongs; a failed request is an error, never a silent drop."""
    op = message.get("op")
    if message.get("success") is False:
        raise FrameError(f"{op or 'request'} failed: {message.get('ret_msg')}")
    if op in _CONTROL_OPS:
        return []
    raise FrameError(f"no topic and no known op in a frame with fields {sorted(message)[:20]}")


def _records(message: JsonObject, what: str) -> list[JsonObject]:
    """`data` as a list of JSON objects (trades, klines, liquidations)."""
    data = field(message, "data", what)
    if type(data) is not list or not all(type(entry) is dict for entry in data):
        raise FrameError(f"{what}: data {show(data)} is not a list of JSON objects")
    return data


def _public_trade(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> list[Item]:
    """A trade push the typed decoder refused: each entry converted (a bad one named), then
    read as the typed path reads it."""
    what = "publicTrade"
    m.known(name)  # an unknown symbol is named first
    entries = [converted(entry, messages.Trade, what) for entry in _records(message, what)]
    return _trades(m, name, entries, recv_ts)


def _name(topic: str) -> str:
    """The symbol of a typed topic `kind[.param].NATIVE`, as `_map` reads it."""
    name = topic.rpartition(".")[2]
    if not name or name == topic:
        raise UntypedError
    return name


def _trades(m: BybitMapper, name: str, entries: list[messages.Trade], recv_ts: int) -> list[Item]:
    what = "publicTrade"
    listed = m.known(name)
    rule = listed.rule
    trades: list[Item] = []
    for trade in entries:
        side = _SIDES.get(trade.S)
        if side is None:
            raise FrameError(f"{what}: S {show(trade.S)} is not 'Buy' or 'Sell'")
        price, size, ts = trade.p, trade.v, trade.T
        if type(ts) is not int:
            raise FrameError(f"{what}: T {show(ts)} is not an integer time in milliseconds")
        trades.append(
            Trade(
                NAME,
                listed.symbol,
                ts * NS_PER_MS,
                recv_ts,
                str(trade.i),
                price,
                size if rule.unit else rule.size(size, price),
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


def _orderbook(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> list[Item]:
    """`orderbook.1` is the quotes channel, any deeper book the books channel."""
    topic = message["topic"]
    parts = topic.split(".")
    if len(parts) != 3:
        raise FrameError(f"topic {topic!r} is not orderbook.<depth>.<symbol>")
    if parts[1] == "1":
        return [_top_of_book(m, message, name, recv_ts)]
    return [_book_update(m, message, name, recv_ts)]


def _apply(side: dict[float, float], changes: list[Level]) -> None:
    for price, size in changes:
        if size == 0.0:
            side.pop(price, None)
        else:
            side[price] = size


def _top_of_book(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> Quote:
    """Depth 1: a snapshot sets the top, a delta (`u` one above the last) changes it; a delta
    with no snapshot before it, or after a skipped `u`, cannot be applied: FrameError, and
    the symbol waits for the next snapshot (Bybit re-sends one after 3 quiet seconds)."""
    what = "orderbook.1"
    listed = m.known(name)
    is_snapshot = _kind(message, what)
    data = mapping(message, "data", what)
    update_id = integer(data, "u", what)
    bids, asks = levels(data, "b", what), levels(data, "a", what)
    bid_px, bid_sz, ask_px, ask_sz = _top(
        m, listed, name, is_snapshot=is_snapshot, update_id=update_id, bids=bids, asks=asks
    )
    ts = millis(message, "ts", what)
    return Quote(NAME, listed.symbol, ts, recv_ts, bid_px, bid_sz, ask_px, ask_sz)


def _top(
    m: BybitMapper,
    listed: Listed,
    name: str,
    *,
    is_snapshot: bool,
    update_id: int,
    bids: list[Level],
    asks: list[Level],
) -> tuple[float, float, float, float]:
    """The symbol's top after this snapshot or delta: bid price and size, ask price and size
    (sizes in base units)."""
    what = "orderbook.1"
    top = m.tops.get(name)
    if is_snapshot:
        top = m.tops[name] = _Top(dict(bids), dict(asks), update_id)
    elif top is None:
        raise FrameError(f"{what}: delta u {update_id} of {name} before any snapshot")
    elif update_id != top.update_id + 1:
        del m.tops[name]
        raise FrameError(
            f"{what}: delta u {update_id} of {name} does not follow u {top.update_id}: "
            "waiting for a snapshot"
        )
    else:
        _apply(top.bids, bids)
        _apply(top.asks, asks)
        top.update_id = update_id
    if not top.bids or not top.asks:
        raise FrameError(f"{what}: {name} has an empty side: no quote without both")
    bid_px = max(top.bids)
    ask_px = min(top.asks)
    # Depth 1 holds one level a side; a delta names the new top and removes the old one.
    top.bids = {bid_px: top.bids[bid_px]}
    top.asks = {ask_px: top.asks[ask_px]}
    bid_sz, ask_sz = top.bids[bid_px], top.asks[ask_px]
    rule = listed.rule
    if not rule.unit:
        bid_sz, ask_sz = rule.size(bid_sz, bid_px), rule.size(ask_sz, ask_px)
    return bid_px, bid_sz, ask_px, ask_sz


def _typed_orderbook(m: BybitMapper, push: messages.Push, recv_ts: int) -> list[Item]:
    """`_orderbook` on a decoded push: every field checked before the top changes."""
    parts = push.topic.split(".")
    if len(parts) != 3 or not parts[2]:
        raise UntypedError
    name = parts[2]
    kind = push.type
    if kind == "snapshot":
        is_snapshot = True
    elif kind == "delta":
        is_snapshot = False
    else:
        raise UntypedError
    data = _BOOK.decode(push.data)
    update_id = typed_int(data.u)
    if parts[1] == "1":
        ts = typed_int(push.ts)
        listed = m.known(name)
        bid_px, bid_sz, ask_px, ask_sz = _top(
            m, listed, name, is_snapshot=is_snapshot, update_id=update_id, bids=data.b, asks=data.a
        )
        return [Quote(NAME, listed.symbol, ts * NS_PER_MS, recv_ts, bid_px, bid_sz, ask_px, ask_sz)]
    ts = typed_int(push.ts if push.cts is msgspec.UNSET else push.cts)
    listed = m.known(name)
    rule = listed.rule
    update = BookUpdate(
        NAME,
        listed.symbol,
        ts * NS_PER_MS,
        recv_ts,
        rule.levels(data.b),
        rule.levels(data.a),
        is_snapshot=is_snapshot,
        last_seq=update_id,
    )
    return [update]


def _book_update(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> BookUpdate:
    what = "orderbook"
    listed = m.known(name)
    rule = listed.rule
    is_snapshot = _kind(message, what)
    data = mapping(message, "data", what)
    # `cts` is the matching engine's time of the book; `ts` when the feed sent it.
    ts = millis(message, "cts" if "cts" in message else "ts", what)
    return BookUpdate(
        NAME,
        listed.symbol,
        ts,
        recv_ts,
        rule.levels(levels(data, "b", what)),
        rule.levels(levels(data, "a", what)),
        is_snapshot=is_snapshot,
        last_seq=integer(data, "u", what),
    )


def _kline(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> list[Item]:
    """An inverse kline's `volume` counts USD contracts; its `turnover` is in the base coin
    (Bybit's inverse BTCUSD ticker of 2023-04-05: volume24h 661543991 USD, turnover24h
    23389.19 BTC, ratio 28284 = the BTC price), so it is the base volume."""
    what = "kline"
    listed = m.known(name)
    rule = listed.rule
    candles: list[Item] = []
    for kline in _records(message, what):
        close = number(kline, "close", what)
        if rule.unit:
            volume = number(kline, "volume", what)
        elif rule.inverse and rule.factor == 1.0:
            volume = number(kline, "turnover", what)
        else:
            volume = rule.size(number(kline, "volume", what), close)
        candles.append(
            Candle(
                NAME,
                listed.symbol,
                one_of(kline, "interval", what, _INTERVALS, "supported"),
                millis(kline, "start", what),
                number(kline, "open", what),
                number(kline, "high", what),
                number(kline, "low", what),
                close,
                volume,
                None,  # Bybit does not count a kline's trades
                flag(kline, "confirm", what),
            )
        )
    return candles


def _typed_kline(m: BybitMapper, push: messages.Push, recv_ts: int) -> list[Item]:
    """`_kline` on a decoded push."""
    name = _name(push.topic)
    klines = _KLINES.decode(push.data)
    listed = m.known(name)
    rule = listed.rule
    candles: list[Item] = []
    for kline in klines:
        interval = _INTERVALS.get(kline.interval) if type(kline.interval) is str else None
        confirm = kline.confirm
        if interval is None or type(confirm) is not bool:
            raise UntypedError
        close = kline.close
        if rule.unit:
            volume = kline.volume
        elif rule.inverse and rule.factor == 1.0:
            if kline.turnover is None:
                raise UntypedError
            volume = kline.turnover
        else:
            volume = rule.size(kline.volume, close)
        candles.append(
            Candle(
                NAME,
                listed.symbol,
                interval,
                typed_int(kline.start) * NS_PER_MS,
                kline.open,
                kline.high,
                kline.low,
                close,
                volume,
                None,
                confirm,
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
    return _ms_text(_given(data, key), key, what)


def _ms_text(value: Any, key: str, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value) * 1_000_000
    except (TypeError, ValueError):
        raise FrameError(f"{what}: {key} {show(value)} is not a time in milliseconds") from None


def _tickers(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> list[Item]:
    """Funding and open interest, each when the message carries it: a snapshot has every
    field, a delta only those that changed.

    Funding needs `fundingRate`: a delta without it changed other fields only, and a dated
    future's ticker has `fundingRate: ""` (no funding): nothing is published (as on OKX, a
    message without a current rate is skipped). Open interest needs `openInterest`: base
    units on linear; USD contracts on inverse, converted at the mark price (this message's,
    else the last one seen for the symbol).
    """
    what = "tickers"
    listed = m.known(name)
    data = mapping(message, "data", what)
    ts = millis(message, "ts", what)
    mark_px = _optional_price(data, "markPrice", what)
    if mark_px is not None:
        m.tickers[name] = _Ticker(mark_px)
    items: list[Item] = []
    if _given(data, "fundingRate") is not None:
        items.append(
            Funding(
                NAME,
                listed.symbol,
                ts,
                number(data, "fundingRate", what),
                mark_px,
                _optional_price(data, "indexPrice", what),
                _optional_ms_text(data, "nextFundingTime", what),
            )
        )
    if _given(data, "openInterest") is not None:
        items.append(_open_interest(m, listed, name, data, ts=ts, recv_ts=recv_ts))
    return items


def _typed_tickers(m: BybitMapper, push: messages.Push, recv_ts: int) -> list[Item]:
    """`_tickers` on a decoded push (an empty value is refused by its Struct)."""
    what = "tickers"
    name = _name(push.topic)
    data = _TICKER.decode(push.data)
    ts = typed_int(push.ts) * NS_PER_MS
    next_funding = None if data.nextFundingTime == "" else data.nextFundingTime
    listed = m.known(name)
    mark_px = data.markPrice
    if mark_px is not None:
        m.tickers[name] = _Ticker(mark_px)
    items: list[Item] = []
    if data.fundingRate is not None:
        items.append(
            Funding(
                NAME,
                listed.symbol,
                ts,
                data.fundingRate,
                mark_px,
                data.indexPrice,
                _ms_text(next_funding, "nextFundingTime", what),
            )
        )
    if data.openInterest is not None:
        items.append(
            _open_interest_of(
                m, listed, name, data.openInterest, data.openInterestValue, ts=ts, recv_ts=recv_ts
            )
        )
    return items


def _open_interest(
    m: BybitMapper, listed: Listed, name: str, data: JsonObject, *, ts: int, recv_ts: int
) -> OpenInterest:
    what = "tickers"
    amount = number(data, "openInterest", what)
    value = _optional_price(data, "openInterestValue", what) if listed.rule.unit else None
    return _open_interest_of(m, listed, name, amount, value, ts=ts, recv_ts=recv_ts)


def _open_interest_of(
    m: BybitMapper,
    listed: Listed,
    name: str,
    amount: float,
    value: float | None,
    *,
    ts: int,
    recv_ts: int,
) -> OpenInterest:
    """`value`: linear's openInterestValue (quote currency), unread elsewhere."""
    what = "tickers"
    rule = listed.rule
    if rule.unit:  # linear: coins; openInterestValue is in the quote currency
        return OpenInterest(NAME, listed.symbol, ts, recv_ts, amount, value)
    ticker = m.tickers.get(name)
    if ticker is None:
        raise FrameError(
            f"{what}: open interest of {name} in contracts, and no mark price yet to "
            "convert it to base units"
        )
    base = rule.size(amount, ticker.mark_px)
    # Inverse: the contracts' value in the quote currency (USD) is exact; Bybit's own
    # openInterestValue is in the base coin, the same figure as `base`.
    quote_value = amount * rule.factor if rule.inverse else base * ticker.mark_px
    return OpenInterest(NAME, listed.symbol, ts, recv_ts, base, quote_value)


def _liquidation_of(
    listed: Listed, item: JsonObject, keys: tuple[str, str, str, str], recv_ts: int
) -> Liquidation:
    what = "liquidation"
    time_key, side_key, size_key, price_key = keys
    price = number(item, price_key, what)
    size = number(item, size_key, what)
    rule = listed.rule
    return Liquidation(
        NAME,
        listed.symbol,
        millis(item, time_key, what),
        recv_ts,
        one_of(item, side_key, what, _LIQUIDATION_ORDER_SIDES, "'Buy' or 'Sell'"),
        price,
        size if rule.unit else rule.size(size, price),
    )


def _all_liquidation(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> list[Item]:
    """`allLiquidation.<symbol>`: `data` is a list of {T, s, S, v, p}."""
    listed = m.known(name)
    return [
        _liquidation_of(listed, item, ("T", "S", "v", "p"), recv_ts)
        for item in _records(message, "allLiquidation")
    ]


def _typed_all_liquidation(m: BybitMapper, push: messages.Push, recv_ts: int) -> list[Item]:
    """`_all_liquidation` on a decoded push."""
    name = _name(push.topic)
    entries = _LIQUIDATIONS.decode(push.data)
    listed = m.known(name)
    rule = listed.rule
    records: list[Item] = []
    for entry in entries:
        side = _LIQUIDATION_ORDER_SIDES.get(entry.S)
        if side is None:
            raise UntypedError
        price, size = entry.p, entry.v
        records.append(
            Liquidation(
                NAME,
                listed.symbol,
                typed_int(entry.T) * NS_PER_MS,
                recv_ts,
                side,
                price,
                size if rule.unit else rule.size(size, price),
            )
        )
    return records


def _legacy_liquidation(m: BybitMapper, message: JsonObject, name: str, recv_ts: int) -> list[Item]:
    """`liquidation.<symbol>` (v5's first topic, since replaced by allLiquidation): `data` is
    one {updatedTime, symbol, side, size, price}."""
    listed = m.known(name)
    item = mapping(message, "data", "liquidation")
    return [_liquidation_of(listed, item, ("updatedTime", "side", "size", "price"), recv_ts)]


_SPOT_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {"publicTrade": _public_trade, "orderbook": _orderbook, "kline": _kline}
)
_DERIVATIVE_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {
        **_SPOT_HANDLERS,
        "tickers": _tickers,
        "allLiquidation": _all_liquidation,
        "liquidation": _legacy_liquidation,
    }
)


# topic kind -> its typed handler (only for the kinds the market's handlers read);
# publicTrade, the busiest, is read inline by `BybitMapper.__call__`
_TYPED: Final[Mapping[str, TypedHandler]] = MappingProxyType(
    {
        "orderbook": _typed_orderbook,
        "kline": _typed_kline,
        "tickers": _typed_tickers,
        "allLiquidation": _typed_all_liquidation,
    }
)


def listing(
    market: Market, symbols: Sequence[str], instruments: Sequence[Instrument]
) -> dict[str, Listed]:
    """Native name -> Listed, from the market's instruments and the configured symbols (whose
    native name follows Bybit's exact naming rules). A configured symbol the metadata does
    not list is sized in its endpoint's documented unit, which Bybit fixes for every
    instrument there; any other name is refused (no name is guessed from a quote list)."""
    listed: dict[str, Listed] = {}
    for instrument in instruments:
        if instrument.exchange == NAME and instrument.kind in market.kinds:
            listed[instrument.native_symbol] = Listed(instrument.symbol, size_rule(instrument))
    known = {entry.symbol for entry in listed.values()}
    for symbol in symbols:
        if symbol not in known:
            listed[native(symbol)] = Listed(symbol, _DOCUMENTED_UNITS[market.name])
    return listed


# What one unit of a size is on each endpoint, as Bybit documents it for every instrument
# there: coins on spot and linear, one USD contract on inverse.
_DOCUMENTED_UNITS: Final[Mapping[str, SizeRule]] = MappingProxyType(
    {"spot": COINS, "linear": COINS, "inverse": SizeRule(1.0, True)}
)


def _market_mapper(
    market: Market, symbols: Sequence[str], instruments: Sequence[Instrument]
) -> BybitMapper:
    handlers = _DERIVATIVE_HANDLERS if market.perp else _SPOT_HANDLERS
    return BybitMapper(market, handlers, MappingProxyType(listing(market, symbols, instruments)))


def make_mapper(symbols: Sequence[str], instruments: Sequence[Instrument] = ()) -> Mapper:
    """A mapper for one market's symbols: the symbols say which endpoint BTCUSDT is on."""
    return _market_mapper(market_of(symbols), symbols, instruments)


def _unknown_market(url: str) -> Mapper:
    def refuse(frame: str | bytes, recv_ts: int) -> list[Item]:
        raise FrameError(
            f"{NAME}: recorded URL {url!r} ends in none of /spot, /linear, /inverse: cannot "
            "tell which market its symbols are on"
        )

    return refuse


def mapper_for_recording(
    url: str, instruments: Sequence[Instrument] = (), symbols: Sequence[str] = ()
) -> Mapper:
    """Offline: the recorded URL names the market (the configured symbols of that market are
    known as live); frames from another URL are refused."""
    market = market_of_url(url)
    if market is None:
        return _unknown_market(url)
    own = [symbol for symbol in symbols if market_of_symbol(symbol) is market]
    return _market_mapper(market, own, instruments)
