"""Boundary checks on normalized records, run once before a record is published.

A failing record raises `InvalidRecordError` with a reason that names the field and the value;
the publisher sends it to the dead-letter stream with the raw frame, never dropping it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from marketstream.schemas.instruments import EXCHANGES, SOURCES
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Instrument,
    InstrumentKind,
    Level,
    Liquidation,
    OpenInterest,
    Price,
    Quote,
    Record,
    Trade,
)

INTERVAL_RE: Final = re.compile(r"^[1-9][0-9]*[smhdw]$")
_EXCHANGES: Final = frozenset(EXCHANGES)
_SOURCES: Final = frozenset(SOURCES)
_SIDES: Final = frozenset(("buy", "sell"))
_KINDS: Final = frozenset(get_args(InstrumentKind))


class InvalidRecordError(ValueError):
    """The record breaks a boundary rule; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What the boundary accepts beyond the per-field rules."""

    now_ns: int  # the receive clock, passed in so that checks stay pure
    max_future_skew_ns: int
    known_symbols: Container[str] | None = None  # None: accept any normalized symbol


def passes(record: Record, latest_ts: int, known_symbols: Container[str] | None) -> bool:
    """True when `validate` accepts the record; False: `validate` decides and names the reason.

    The hot path: a chained comparison per rule, no message built, no `Limits` made.
    `latest_ts` is the receive clock plus the allowed skew (`now_ns + max_future_skew_ns`).
    Callers with many records look the predicate up in `PASSES` themselves (a call less).
    """
    try:
        return PASSES[type(record)](record, latest_ts, known_symbols)
    except (KeyError, TypeError, ValueError):  # not a record, or a malformed field: explain
        return False


def validate(record: Record, limits: Limits) -> None:
    """Raise InvalidRecordError when the record must not be published."""
    if passes(record, limits.now_ns + limits.max_future_skew_ns, limits.known_symbols):
        return
    _explain(record, limits)


def _explain(record: Record, limits: Limits) -> None:
    """Every rule in turn, raising InvalidRecordError with the first one broken."""
    owners = _SOURCES if isinstance(record, Price) else _EXCHANGES
    if record.exchange not in owners:
        what = "source" if owners is _SOURCES else "exchange"
        raise InvalidRecordError(f"{what} {record.exchange!r} is not one of {sorted(owners)}")
    if limits.known_symbols is not None and record.symbol not in limits.known_symbols:
        raise InvalidRecordError(
            f"symbol {record.symbol!r} is not configured for {record.exchange}"
        )
    _timestamp("ts", record.ts, limits)
    _CHECKS[type(record)](record, limits)


def _timestamp(name: str, value: int, limits: Limits) -> None:
    if value <= 0:
        raise InvalidRecordError(f"{name} {value} is not a positive epoch time in nanoseconds")
    if value > limits.now_ns + limits.max_future_skew_ns:
        ahead_ms = (value - limits.now_ns) / 1e6
        raise InvalidRecordError(f"{name} {value} is {ahead_ms:.0f} ms in the future")


def _positive(name: str, value: float) -> None:
    # `not value > 0` is also true for NaN, so one comparison covers both.
    if not (value > 0 and value != math.inf):
        raise InvalidRecordError(f"{name} {value!r} is not a positive finite number")


def _non_negative(name: str, value: float) -> None:
    if not (value >= 0 and value != math.inf):
        raise InvalidRecordError(f"{name} {value!r} is not a non-negative finite number")


def _trade(record: Record, limits: Limits) -> None:
    assert isinstance(record, Trade)
    _timestamp("recv_ts", record.recv_ts, limits)
    _positive("price", record.price)
    _positive("size", record.size)
    if record.side not in _SIDES:
        raise InvalidRecordError(f"side {record.side!r} is not 'buy' or 'sell'")
    if not record.trade_id:
        raise InvalidRecordError("trade_id is empty")


def _quote(record: Record, limits: Limits) -> None:
    assert isinstance(record, Quote)
    _timestamp("recv_ts", record.recv_ts, limits)
    _positive("bid_px", record.bid_px)
    _positive("ask_px", record.ask_px)
    for name in ("bid_sz", "ask_sz", "last_px"):
        value = getattr(record, name)
        if value is not None:
            _positive(name, value)


def _candle(record: Record, limits: Limits) -> None:
    assert isinstance(record, Candle)
    if not INTERVAL_RE.match(record.interval):
        raise InvalidRecordError(f"interval {record.interval!r} is not like 1s, 1m, 5m, 1h or 1d")
    for name in ("open", "high", "low", "close"):
        _positive(name, getattr(record, name))
    _non_negative("volume", record.volume)
    if record.trades is not None and record.trades < 0:
        raise InvalidRecordError(f"trades {record.trades} is negative")
    if not record.low <= min(record.open, record.close):
        raise InvalidRecordError(
            f"low {record.low!r} is above open {record.open!r} or close {record.close!r}"
        )
    if not max(record.open, record.close) <= record.high:
        raise InvalidRecordError(
            f"high {record.high!r} is below open {record.open!r} or close {record.close!r}"
        )


def _levels(name: str, levels: list[Level], descending: bool) -> None:
    previous: float | None = None
    for price, size in levels:
        _positive(f"{name} price", price)
        _positive(f"{name} size", size)
        if previous is not None and (price >= previous if descending else price <= previous):
            order = "descending" if descending else "ascending"
            raise InvalidRecordError(f"{name} prices are not strictly {order} at {price!r}")
        previous = price


def _book(record: Record, limits: Limits) -> None:
    assert isinstance(record, Book)
    _timestamp("recv_ts", record.recv_ts, limits)
    if record.seq < 0:
        raise InvalidRecordError(f"seq {record.seq} is negative")
    _levels("bids", record.bids, descending=True)
    _levels("asks", record.asks, descending=False)
    if record.bids and record.asks and record.bids[0][0] >= record.asks[0][0]:
        raise InvalidRecordError(
            f"book is crossed: best bid {record.bids[0][0]!r} >= best ask {record.asks[0][0]!r}"
        )


def _funding(record: Record, limits: Limits) -> None:
    assert isinstance(record, Funding)
    if not math.isfinite(record.rate):
        raise InvalidRecordError(f"rate {record.rate!r} is not a finite number")
    if record.mark_px is not None:
        _positive("mark_px", record.mark_px)
    if record.index_px is not None:
        _positive("index_px", record.index_px)
    if record.next_ts is not None and record.next_ts <= 0:
        raise InvalidRecordError(f"next_ts {record.next_ts} is not a positive epoch time")


def _liquidation(record: Record, limits: Limits) -> None:
    assert isinstance(record, Liquidation)
    _timestamp("recv_ts", record.recv_ts, limits)
    if record.side not in _SIDES:
        raise InvalidRecordError(f"side {record.side!r} is not 'buy' or 'sell'")
    _positive("price", record.price)
    _positive("size", record.size)


def _open_interest(record: Record, limits: Limits) -> None:
    assert isinstance(record, OpenInterest)
    _timestamp("recv_ts", record.recv_ts, limits)
    _non_negative("open_interest", record.open_interest)
    if record.value is not None:
        _non_negative("value", record.value)


def _instrument(record: Record, limits: Limits) -> None:
    assert isinstance(record, Instrument)
    if record.kind not in _KINDS:
        raise InvalidRecordError(f"kind {record.kind!r} is not one of {sorted(_KINDS)}")
    if not (record.native_symbol and record.base and record.quote and record.settle):
        raise InvalidRecordError("native_symbol, base, quote and settle must not be empty")
    for name in ("contract_value", "contract_multiplier", "tick_size", "lot_size"):
        _positive(name, getattr(record, name))
    if record.expiry is not None and record.expiry <= 0:
        raise InvalidRecordError(f"expiry {record.expiry} is not a positive epoch time")


def _price(record: Record, limits: Limits) -> None:
    assert isinstance(record, Price)
    _timestamp("recv_ts", record.recv_ts, limits)
    _positive("price", record.price)
    if record.source_ts is not None:
        _timestamp("source_ts", record.source_ts, limits)
    if record.block is not None and record.block < 0:
        raise InvalidRecordError(f"block {record.block} is negative")
    if record.liquidity is not None:
        _non_negative("liquidity", record.liquidity)
    if record.change_24h is not None and not math.isfinite(record.change_24h):
        raise InvalidRecordError(f"change_24h {record.change_24h!r} is not a finite number")


_CHECKS: Final[dict[type[Record], Callable[[Record, Limits], None]]] = {
    Trade: _trade,
    Quote: _quote,
    Candle: _candle,
    Book: _book,
    Funding: _funding,
    Liquidation: _liquidation,
    OpenInterest: _open_interest,
    Instrument: _instrument,
    Price: _price,
}


# Fast predicates, one per record class: each accepts exactly what its check above accepts.
# `0 < x < inf` is `_positive` (NaN fails every comparison); `0 < ts <= latest` is `_timestamp`.
_INF: Final = math.inf
# Every interval like 1s..99w: INTERVAL_RE accepts them all; others go through the regex.
_INTERVALS: Final = frozenset(f"{n}{unit}" for n in range(1, 100) for unit in "smhdw")


def _trade_passes(record: Trade, latest_ts: int, known: Container[str] | None) -> bool:
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and 0 < record.recv_ts <= latest_ts
        and 0 < record.price < _INF
        and 0 < record.size < _INF
        and record.side in _SIDES
        and record.trade_id != ""
    )


def _quote_passes(record: Quote, latest_ts: int, known: Container[str] | None) -> bool:
    bid_sz, ask_sz, last_px = record.bid_sz, record.ask_sz, record.last_px
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and 0 < record.recv_ts <= latest_ts
        and 0 < record.bid_px < _INF
        and 0 < record.ask_px < _INF
        and (bid_sz is None or 0 < bid_sz < _INF)
        and (ask_sz is None or 0 < ask_sz < _INF)
        and (last_px is None or 0 < last_px < _INF)
    )


def _candle_passes(record: Candle, latest_ts: int, known: Container[str] | None) -> bool:
    low, high, trades = record.low, record.high, record.trades
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and record.interval in _INTERVALS
        and 0 < low <= record.open <= high < _INF
        and low <= record.close <= high
        and 0 <= record.volume < _INF
        and (trades is None or trades >= 0)
    )


def _side_passes(levels: list[Level], descending: bool) -> bool:
    """Positive finite sizes; prices positive, finite and strictly ordered best first."""
    if descending:
        previous = _INF  # each bid below the one before it, and above 0
        for price, size in levels:
            if not (0 < price < previous and 0 < size < _INF):
                return False
            previous = price
    else:
        previous = 0.0  # each ask above the one before it, and finite
        for price, size in levels:
            if not (previous < price < _INF and 0 < size < _INF):
                return False
            previous = price
    return True


def _book_passes(record: Book, latest_ts: int, known: Container[str] | None) -> bool:
    bids, asks = record.bids, record.asks
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and 0 < record.recv_ts <= latest_ts
        and record.seq >= 0
        and _side_passes(bids, descending=True)
        and _side_passes(asks, descending=False)
        and not (bids and asks and bids[0][0] >= asks[0][0])
    )


def _funding_passes(record: Funding, latest_ts: int, known: Container[str] | None) -> bool:
    mark_px, index_px, next_ts = record.mark_px, record.index_px, record.next_ts
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and -_INF < record.rate < _INF
        and (mark_px is None or 0 < mark_px < _INF)
        and (index_px is None or 0 < index_px < _INF)
        and (next_ts is None or next_ts > 0)
    )


def _liquidation_passes(record: Liquidation, latest_ts: int, known: Container[str] | None) -> bool:
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and 0 < record.recv_ts <= latest_ts
        and record.side in _SIDES
        and 0 < record.price < _INF
        and 0 < record.size < _INF
    )


def _open_interest_passes(
    record: OpenInterest, latest_ts: int, known: Container[str] | None
) -> bool:
    value = record.value
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and 0 < record.recv_ts <= latest_ts
        and 0 <= record.open_interest < _INF
        and (value is None or 0 <= value < _INF)
    )


def _instrument_passes(record: Instrument, latest_ts: int, known: Container[str] | None) -> bool:
    expiry = record.expiry
    return (
        record.exchange in _EXCHANGES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and record.kind in _KINDS
        and bool(record.native_symbol and record.base and record.quote and record.settle)
        and 0 < record.contract_value < _INF
        and 0 < record.contract_multiplier < _INF
        and 0 < record.tick_size < _INF
        and 0 < record.lot_size < _INF
        and (expiry is None or expiry > 0)
    )


def _price_passes(record: Price, latest_ts: int, known: Container[str] | None) -> bool:
    source_ts, block, liquidity, change = (
        record.source_ts,
        record.block,
        record.liquidity,
        record.change_24h,
    )
    return (
        record.exchange in _SOURCES
        and (known is None or record.symbol in known)
        and 0 < record.ts <= latest_ts
        and 0 < record.recv_ts <= latest_ts
        and 0 < record.price < _INF
        and (source_ts is None or 0 < source_ts <= latest_ts)
        and (block is None or block >= 0)
        and (liquidity is None or 0 <= liquidity < _INF)
        and (change is None or -_INF < change < _INF)
    )


# The predicate of each record class: (record, latest_ts, known symbols or None) -> bool. Each
# checks the exchange and the symbol too. A malformed field may raise TypeError or ValueError:
# the caller treats that as a failure and lets `validate` name it.
PASSES: Final[Mapping[type, Callable[[Any, int, Container[str] | None], bool]]] = {
    Trade: _trade_passes,
    Quote: _quote_passes,
    Candle: _candle_passes,
    Book: _book_passes,
    Funding: _funding_passes,
    Liquidation: _liquidation_passes,
    OpenInterest: _open_interest_passes,
    Instrument: _instrument_passes,
    Price: _price_passes,
}
