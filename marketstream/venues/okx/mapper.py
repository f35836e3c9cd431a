"""OKX v5 public feed, spot, swaps and futures: the pure frame mapper `(frame, recv_ts) -> items`.

Every push is `{"arg": {"channel": ..., "instId": ...}, "data": [...]}` (book pushes add
`action`); answers to requests are `{"event": ...}` and the answer to the text `ping` is the
text `pong`. Times, prices and sizes arrive as strings; book levels keep their text because
OKX's checksum is computed over the text as sent. A WebSocket book snapshot is still
accepted (older captures, feeds that still send one; see `rest.py`).

Derivative sizes are contracts on the wire; every record's size is in base units, by the
instrument's contract value (`venues/base/contracts.py`): a derivative without metadata is a
FrameError wherever a size is needed. Spot sizes are coins and pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from operator import itemgetter
from types import MappingProxyType
from typing import Final, TypeVar

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
from marketstream.venues.base.contracts import COINS, SizeRule, rule_for
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, LevelText, in_venue
from marketstream.venues.base.parsing import (
    NOT_TYPED,
    NS_PER_MS,
    JsonObject,
    UntypedError,
    converted,
    field,
    load_object,
    mapping,
    number,
    one_of,
    show,
    text,
    text_levels,
    typed_int,
)
from marketstream.venues.okx import messages
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


@dataclass(frozen=True, slots=True)
class Market:
    """One instId as the mapper knows it: its normalized symbol and its size rule (None: a
    derivative without metadata, whose sizes cannot be mapped: `sizes` raises)."""

    symbol: str
    rule: SizeRule | None

    def sizes(self) -> SizeRule:
        if self.rule is None:
            return rule_for(self.symbol, None)  # raises the FrameError naming the symbol
        return self.rule


# (channel, market, message, recv_ts) -> items
Handler = Callable[[str, Market, JsonObject, int], list[Item]]
# (mapper, channel, the decoded push, recv_ts) -> items; UntypedError: a push to read as JSON
TypedHandler = Callable[["OkxMapper", str, messages.Push, int], list[Item]]
T = TypeVar("T")
_PUSH: Final = msgspec.json.Decoder(messages.Push)
_BOOK_ITEMS: Final = msgspec.json.Decoder(list[messages.BookItem])
_CANDLE_ROWS: Final = msgspec.json.Decoder(list[messages.CandleRow])
_FUNDING: Final = msgspec.json.Decoder(list[messages.Funding])
_OPEN_INTEREST: Final = msgspec.json.Decoder(list[messages.OpenInterest])
_LIQUIDATIONS: Final = msgspec.json.Decoder(list[messages.Liquidations], strict=False)


@dataclass(frozen=True, slots=True)
class OkxMapper:
    """Maps one frame to items: instIds are named from the instrument metadata, else from the
    configured symbols, else read off the id; sizes go to base units by the metadata."""

    symbols: Mapping[str, str]  # configured instId -> normalized symbol, read-only
    instruments: Mapping[str, Instrument]  # instId -> metadata, read-only
    # instId -> Market, filled as instIds are seen (a cache: the mapping never changes).
    markets: dict[str, Market] = dataclass_field(default_factory=dict)

    def __call__(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        """Pushes decode straight into their channel's Structs; every other frame (answers,
        pongs, and a push the typed path refuses, which `_map` then explains) is read as
        JSON."""
        try:
            try:
                push = _PUSH.decode(frame)
                channel = push.arg.channel
                typed = _TYPED.get(channel)
                if typed is not None:
                    return typed(self, channel, push, recv_ts)
            except NOT_TYPED:
                pass
            return self._map(frame, recv_ts)
        except FrameError as exc:
            raise in_venue(NAME, exc) from None

    def typed_market(self, push: messages.Push) -> Market:
        """The market of a push read by instId; one without (or with "") is read as JSON."""
        inst_id = push.arg.instId
        if not inst_id:
            raise UntypedError
        return self.market(inst_id)

    def market(self, inst_id: str) -> Market:
        market = self.markets.get(inst_id)
        if market is None:
            instrument = self.instruments.get(inst_id)
            if instrument is not None:
                symbol = instrument.symbol
            else:
                symbol = self.symbols.get(inst_id) or normalized_symbol(inst_id)
            try:
                rule: SizeRule | None = rule_for(symbol, instrument)
            except FrameError:
                rule = None
            market = self.markets[inst_id] = Market(symbol, rule)
        return market

    def _map(self, frame: str | bytes, recv_ts: int) -> list[Item]:
        if frame == (b"pong" if type(frame) is bytes else "pong"):
            return []  # the answer to our keep-alive `ping`
        message = load_object(frame)
        if "event" in message:
            return _event(message)
        arg = mapping(message, "arg", "push")
        channel = text(arg, "channel", "arg")
        if channel == LIQUIDATIONS:
            return self._liquidations(message, recv_ts)
        handler = _HANDLERS.get(channel)
        if handler is None:
            raise FrameError(f"unknown channel {show(channel)}")
        return handler(channel, self.market(text(arg, "instId", "arg")), message, recv_ts)

    def _liquidations(self, message: JsonObject, recv_ts: int) -> list[Item]:
        """`liquidation-orders` is subscribed by instType: each item names its instId and
        lists its liquidations; instruments not configured (when some are) are left out."""
        what = LIQUIDATIONS
        records: list[Item] = []
        for item in objects(message, what):
            inst_id = text(item, "instId", what)
            if self.symbols and inst_id not in self.symbols:
                continue
            market = self.market(inst_id)
            rule = market.sizes()
            details = field(item, "details", what)
            if type(details) is not list:
                raise FrameError(f"{what}: details {show(details)} is not a list")
            for detail in details:
                if type(detail) is not dict:
                    raise FrameError(f"{what}: details item {show(detail)} is not a JSON object")
                price = number(detail, "bkPx", what)
                records.append(
                    Liquidation(
                        NAME,
                        market.symbol,
                        millis_text(detail, "ts", what),
                        recv_ts,
                        one_of(detail, "side", what, _SIDES, "'buy' or 'sell'"),
                        price,
                        rule.size(number(detail, "sz", what), price),
                    )
                )
        return records


def _event(message: JsonObject) -> list[Item]:
    event = message["event"]
    if event == "error":
        raise FrameError(f"error {message.get('code')}: {message.get('msg')}")
    if event in _CONTROL_EVENTS:
        return []
    raise FrameError(f"unknown event {show(event)}")


def _trades(market: Market, items: list[messages.Trade], recv_ts: int) -> list[Item]:
    what = "trades"
    rule = market.sizes()
    trades: list[Item] = []
    for item in items:
        side = _SIDES.get(item.side)
        if side is None:
            raise FrameError(f"{what}: side {show(item.side)} is not 'buy' or 'sell'")
        price, size = item.px, item.sz
        trades.append(
            Trade(
                NAME,
                market.symbol,
                _millis_value(item.ts, "ts", what),
                recv_ts,
                item.tradeId,
                price,
                size if rule.unit else rule.size(size, price),
                side,  # OKX's trade side is the taker's
            )
        )
    return trades


def _tickers(market: Market, items: list[messages.Ticker], recv_ts: int) -> list[Item]:
    what = "tickers"
    rule = market.sizes()
    quotes: list[Item] = []
    for item in items:
        bid_px, bid_sz, ask_px, ask_sz = item.bidPx, item.bidSz, item.askPx, item.askSz
        if not rule.unit:
            bid_sz, ask_sz = rule.size(bid_sz, bid_px), rule.size(ask_sz, ask_px)
        quotes.append(
            Quote(
                NAME,
                market.symbol,
                _millis_value(item.ts, "ts", what),
                recv_ts,
                bid_px,
                bid_sz,
                ask_px,
                ask_sz,
                item.last,
            )
        )
    return quotes


def _typed_items(kind: type[T], handler: Callable[[Market, list[T], int], list[Item]]) -> Handler:
    """The JSON reader of a typed channel: each data item converted to its Struct (a bad one
    named by `converted`), then the typed handler."""

    def read(channel: str, market: Market, message: JsonObject, recv_ts: int) -> list[Item]:
        market.sizes()  # a market without the metadata its sizes need is named first
        items = [converted(item, kind, channel) for item in objects(message, channel)]
        return handler(market, items, recv_ts)

    return read


# Candle channels the mapper reads -> the normalized interval (OKX's `1H`/`1M` are hour/month).
_CANDLE_INTERVALS: Final[Mapping[str, str]] = MappingProxyType({"candle1m": "1m"})


def _candles(channel: str, market: Market, message: JsonObject, recv_ts: int) -> list[Item]:
    """`[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`; `confirm` "1": the candle closed.

    `vol` is base currency for spot but contracts for derivatives, whose `volCcy` is the
    base currency (for spot it is the quote): derivatives take `volCcy`, or `vol` converted
    at the close where it is missing. Captures from before OKX added `confirm` (2022) have 7
    fields; their candles read as open.
    """
    what = channel
    rule = market.sizes()
    candles: list[Item] = []
    for row in _data(message, what):
        if type(row) is not list or len(row) < 6:
            raise FrameError(
                f"{what}: {show(row)} is not a list [ts, open, high, low, close, volume, ...]"
            )
        close = _row_number(row, 4, "close", what)
        if rule.unit:
            volume = _row_number(row, 5, "vol", what)
        elif len(row) > 6 and row[6] != "":
            volume = _row_number(row, 6, "volCcy", what)
        else:
            volume = rule.size(_row_number(row, 5, "vol", what), close)
        candles.append(
            Candle(
                NAME,
                market.symbol,
                _CANDLE_INTERVALS[channel],
                _millis_value(row[0], "ts", what),
                _row_number(row, 1, "open", what),
                _row_number(row, 2, "high", what),
                _row_number(row, 3, "low", what),
                close,
                volume,
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


def _books(channel: str, market: Market, message: JsonObject, recv_ts: int) -> list[Item]:
    """Incremental books: a `snapshot` after subscribing, then `update`s linked by seqId."""
    what = channel
    action = message.get("action")
    if action not in ("snapshot", "update"):
        raise FrameError(f"{what}: action {show(action)} is not 'snapshot' or 'update'")
    rule = market.sizes()
    return [
        _book_update(market.symbol, rule, item, recv_ts, what, is_snapshot=action == "snapshot")
        for item in objects(message, what)
    ]


def _book_snapshots(channel: str, market: Market, message: JsonObject, recv_ts: int) -> list[Item]:
    """`books5` and `bbo-tbt`: every push is the whole (shallow) book."""
    rule = market.sizes()
    return [
        _book_update(market.symbol, rule, item, recv_ts, channel, is_snapshot=True)
        for item in objects(message, channel)
    ]


def _book_update(
    symbol: str, rule: SizeRule, item: JsonObject, recv_ts: int, what: str, *, is_snapshot: bool
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
        rule=rule,
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
    rule: SizeRule = COINS,
) -> BookUpdate:
    """One book item's levels (as floats and as sent) and time: pushes and the REST snapshot
    write them alike; the caller reads the sequence fields, which they do not. The float
    levels' sizes go to base units by `rule`; the text stays as sent, for the checksum."""
    bids, bid_texts = book_side(item, "bids", what)
    asks, ask_texts = book_side(item, "asks", what)
    if not rule.unit:
        bids, asks = rule.levels(bids), rule.levels(asks)
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


def _funding_rate(channel: str, market: Market, message: JsonObject, recv_ts: int) -> list[Item]:
    """The current rate, charged at the settlement `fundingTime` (so that is `next_ts`;
    `nextFundingTime` is the settlement after it, for the predicted `nextFundingRate`).

    The event time is the push's `ts`; older pushes have none and take the receive time,
    never `fundingTime`, which is hours away. A push with no current rate (only
    `nextFundingRate`, or `fundingRate` empty) carries nothing to record and is skipped, as
    on Bybit. The channel carries no mark or index price.
    """
    what = channel
    rates: list[Item] = []
    for item in objects(message, what):
        if item.get("fundingRate") in (None, ""):
            continue
        settles = item.get("fundingTime")
        next_ts = None if settles in (None, "") else _millis_value(settles, "fundingTime", what)
        ts = millis_text(item, "ts", what) if "ts" in item else recv_ts
        rates.append(
            Funding(NAME, market.symbol, ts, number(item, "fundingRate", what), None, None, next_ts)
        )
    return rates


def _open_interest(channel: str, market: Market, message: JsonObject, recv_ts: int) -> list[Item]:
    """`oi` counts contracts, `oiCcy` the same in coins (base units): `oiCcy` is taken, or
    `oi` converted for linear contracts where it is missing (an inverse contract's coins
    depend on a price this push does not carry). `value` is `oiUsd` where OKX sends it (newer
    pushes), else for inverse contracts `oi` x the contract's quote value."""
    what = channel
    records: list[Item] = []
    for item in objects(message, what):
        contracts = number(item, "oi", what)
        if item.get("oiCcy") not in (None, ""):
            coins = number(item, "oiCcy", what)
        else:
            rule = market.sizes()
            if rule.inverse:
                raise FrameError(f"{what}: oiCcy is missing: inverse contracts need it")
            coins = rule.size(contracts, 1.0)
        if item.get("oiUsd") not in (None, ""):
            value: float | None = number(item, "oiUsd", what)
        elif market.rule is not None and market.rule.inverse:
            value = contracts * market.rule.factor
        else:
            value = None
        records.append(
            OpenInterest(NAME, market.symbol, millis_text(item, "ts", what), recv_ts, coins, value)
        )
    return records


def _typed_books(m: OkxMapper, channel: str, push: messages.Push, recv_ts: int) -> list[Item]:
    """`_books` and `_book_snapshots` on a decoded push."""
    market = m.typed_market(push)
    items = _BOOK_ITEMS.decode(push.data)
    if channel in _SNAPSHOT_BOOKS:
        is_snapshot = True
    elif push.action in ("snapshot", "update"):  # a tuple: the action may be any JSON value
        is_snapshot = push.action == "snapshot"
    else:
        raise UntypedError
    rule = market.sizes()
    return [_typed_book(market.symbol, rule, item, recv_ts, is_snapshot) for item in items]


def _typed_book(
    symbol: str, rule: SizeRule, item: messages.BookItem, recv_ts: int, is_snapshot: bool
) -> BookUpdate:
    crc, prev, seq = item.checksum, item.prevSeqId, item.seqId
    if crc is not None:
        typed_int(crc)
    if prev is not None:
        typed_int(prev)
    if seq is not None:
        typed_int(seq)
    bids, bid_texts = _typed_levels(item.bids)
    asks, ask_texts = _typed_levels(item.asks)
    ts = item.ts
    if not (type(ts) is str and ts.isascii() and ts.isdigit()):
        ts = typed_int(ts)
    if not rule.unit:
        bids, asks = rule.levels(bids), rule.levels(asks)
    return BookUpdate(
        NAME,
        symbol,
        int(ts) * NS_PER_MS,
        recv_ts,
        bids,
        asks,
        is_snapshot=is_snapshot,
        first_seq=prev + 1 if prev is not None and not is_snapshot else None,
        last_seq=seq,
        prev_seq=prev,
        checksum=crc or None,
        bid_texts=bid_texts,
        ask_texts=ask_texts,
    )


def _typed_levels(entries: list[list[str]]) -> tuple[list[Level], list[LevelText]]:
    """`book_side` on decoded levels (their price and size are strings already)."""
    levels: list[Level] = []
    texts: list[LevelText] = []
    try:
        for entry in entries:
            price, size = entry[0], entry[1]
            levels.append((float(price), float(size)))
            texts.append((price, size))
    except (IndexError, ValueError):
        raise UntypedError from None
    return levels, texts


def _typed_candles(m: OkxMapper, channel: str, push: messages.Push, recv_ts: int) -> list[Item]:
    """`_candles` on a decoded push: every value of a row is a string."""
    market = m.typed_market(push)
    rows = _CANDLE_ROWS.decode(push.data)
    rule = market.sizes()
    interval = _CANDLE_INTERVALS[channel]
    candles: list[Item] = []
    try:
        for row in rows:
            count = len(row)
            if count < 6 or not (row[0].isascii() and row[0].isdigit()):
                raise UntypedError
            close = float(row[4])
            if rule.unit:
                volume = float(row[5])
            elif count > 6 and row[6] != "":
                volume = float(row[6])
            else:
                volume = rule.size(float(row[5]), close)
            candles.append(
                Candle(
                    NAME,
                    market.symbol,
                    interval,
                    int(row[0]) * NS_PER_MS,
                    float(row[1]),
                    float(row[2]),
                    float(row[3]),
                    close,
                    volume,
                    closed=count > 8 and row[8] == "1",
                )
            )
    except ValueError:
        raise UntypedError from None
    return candles


LIQUIDATIONS: Final = "liquidation-orders"
_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {
        "trades": _typed_items(messages.Trade, _trades),
        "tickers": _typed_items(messages.Ticker, _tickers),
        "candle1m": _candles,
        "books": _books,
        # The same layout at other depths, as captures of them hold (tbt: VIP-only feeds).
        "books-l2-tbt": _books,
        "books50-l2-tbt": _books,
        "books5": _book_snapshots,
        "bbo-tbt": _book_snapshots,
        "funding-rate": _funding_rate,
        "open-interest": _open_interest,
    }
)


def _typed_number(value: object) -> float:
    """`number` on a value already read; one it would refuse goes to the JSON path."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UntypedError from None


def _typed_millis(value: object) -> int:
    """`_millis_value` on a value already read; one it would refuse goes to the JSON path."""
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value) * NS_PER_MS
    return typed_int(value) * NS_PER_MS


def _typed_funding(m: OkxMapper, channel: str, push: messages.Push, recv_ts: int) -> list[Item]:
    """`_funding_rate` on a decoded push."""
    market = m.typed_market(push)
    rates: list[Item] = []
    for item in _FUNDING.decode(push.data):
        rate = item.fundingRate
        if rate is None or rate == "":
            continue
        settles = item.fundingTime
        next_ts = None if settles is None or settles == "" else _typed_millis(settles)
        ts = recv_ts if item.ts is msgspec.UNSET else _typed_millis(item.ts)
        rates.append(Funding(NAME, market.symbol, ts, _typed_number(rate), None, None, next_ts))
    return rates


def _typed_open_interest(
    m: OkxMapper, channel: str, push: messages.Push, recv_ts: int
) -> list[Item]:
    """`_open_interest` on a decoded push: every value checked before a semantic error."""
    what = channel
    market = m.typed_market(push)
    records: list[Item] = []
    for item in _OPEN_INTEREST.decode(push.data):
        contracts = _typed_number(item.oi)
        in_coins = item.oiCcy is not None and item.oiCcy != ""
        coins = _typed_number(item.oiCcy) if in_coins else None
        in_usd = item.oiUsd is not None and item.oiUsd != ""
        value = _typed_number(item.oiUsd) if in_usd else None
        ts = _typed_millis(item.ts)
        if coins is None:
            rule = market.sizes()
            if rule.inverse:
                raise FrameError(f"{what}: oiCcy is missing: inverse contracts need it")
            coins = rule.size(contracts, 1.0)
        if value is None and market.rule is not None and market.rule.inverse:
            value = contracts * market.rule.factor
        records.append(OpenInterest(NAME, market.symbol, ts, recv_ts, coins, value))
    return records


def _typed_liquidations(
    m: OkxMapper, channel: str, push: messages.Push, recv_ts: int
) -> list[Item]:
    """`OkxMapper._liquidations` on a decoded push."""
    records: list[Item] = []
    for item in _LIQUIDATIONS.decode(push.data):
        inst_id = item.instId
        if m.symbols and inst_id not in m.symbols:
            continue
        market = m.market(inst_id)
        rule = market.sizes()
        for detail in item.details:
            side = _SIDES.get(detail.side)
            if side is None:
                raise UntypedError
            price = detail.bkPx
            records.append(
                Liquidation(
                    NAME,
                    market.symbol,
                    _typed_millis(detail.ts),
                    recv_ts,
                    side,
                    price,
                    rule.size(detail.sz, price),
                )
            )
    return records


def _typed(kind: type[T], handler: Callable[[Market, list[T], int], list[Item]]) -> TypedHandler:
    """The typed reader of a channel whose data items decode into `kind` as they are."""
    decoder = msgspec.json.Decoder(list[kind], strict=False)  # type: ignore[valid-type]

    def read(m: OkxMapper, channel: str, push: messages.Push, recv_ts: int) -> list[Item]:
        return handler(m.typed_market(push), decoder.decode(push.data), recv_ts)

    return read


_SNAPSHOT_BOOKS: Final = frozenset({"books5", "bbo-tbt"})  # every push the whole book
# channel -> its typed reader: every channel the mapper reads
_TYPED: Final[Mapping[str, TypedHandler]] = MappingProxyType(
    {
        LIQUIDATIONS: _typed_liquidations,
        "funding-rate": _typed_funding,
        "open-interest": _typed_open_interest,
        "trades": _typed(messages.Trade, _trades),
        "tickers": _typed(messages.Ticker, _tickers),
        "candle1m": _typed_candles,
        **dict.fromkeys(
            ("books", "books-l2-tbt", "books50-l2-tbt", *_SNAPSHOT_BOOKS), _typed_books
        ),
    }
)


def make_mapper(symbols: Sequence[str], instruments: Sequence[Instrument] = ()) -> OkxMapper:
    """The mapper of these configured symbols, with OKX's instruments among `instruments`."""
    return OkxMapper(
        MappingProxyType({native_symbol(symbol): symbol for symbol in symbols}),
        MappingProxyType({i.native_symbol: i for i in instruments if i.exchange == NAME}),
    )
