"""Boundary validation: valid records pass; each broken rule names the field and value."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgspec.structs
import pytest
from hypothesis import given

from marketstream.schemas.records import Book, Candle, Funding, Quote, Record, Trade
from marketstream.schemas.validation import InvalidRecordError, Limits, passes, validate
from tests.unit.strategies import NOW_NS, records

LIMITS = Limits(now_ns=NOW_NS, max_future_skew_ns=5_000_000_000)
TRADE = Trade("binance", "BTC-USDT", NOW_NS, NOW_NS, "1", 100.0, 1.0, "buy")
QUOTE = Quote("binance", "BTC-USDT", NOW_NS, NOW_NS, 99.0, 1.0, 101.0, 2.0)
CANDLE = Candle("binance", "BTC-USDT", "1m", NOW_NS, 100.0, 110.0, 90.0, 105.0, 3.0, 7, True)
BOOK = Book("binance", "BTC-USDT", NOW_NS, NOW_NS, 5, [(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0)])
FUNDING = Funding("binance-usdm", "BTC-USDT-PERP", NOW_NS, -0.0001, 100.0, 99.9, NOW_NS)


@given(records)
def test_generated_records_are_valid(record: Record) -> None:
    validate(record, LIMITS)


def _broken(record: Record, **changes: Any) -> Record:
    return msgspec.structs.replace(record, **changes)


BROKEN = [
    (_broken(TRADE, price=math.nan), "price nan is not a positive finite number"),
    (_broken(TRADE, price=math.inf), "price inf is not a positive finite number"),
    (_broken(TRADE, size=0.0), "size 0.0 is not a positive"),
    (_broken(TRADE, side="long"), "side 'long' is not 'buy' or 'sell'"),
    (_broken(TRADE, trade_id=""), "trade_id is empty"),
    (_broken(TRADE, exchange="ftx"), "exchange 'ftx' is not one of"),
    (_broken(TRADE, ts=0), "ts 0 is not a positive epoch time"),
    (_broken(TRADE, ts=NOW_NS + 6_000_000_000), "ts .* is 6000 ms in the future"),
    (_broken(TRADE, recv_ts=-5), "recv_ts -5 is not a positive"),
    (_broken(QUOTE, ask_px=-1.0), "ask_px -1.0 is not a positive"),
    (_broken(QUOTE, last_px=math.nan), "last_px nan"),
    (_broken(QUOTE, bid_sz=0.0), "bid_sz 0.0 is not a positive"),
    (_broken(CANDLE, low=101.0), "low 101.0 is above open 100.0 or close 105.0"),
    (_broken(CANDLE, high=104.0), "high 104.0 is below open 100.0 or close 105.0"),
    (_broken(CANDLE, interval="1min"), "interval '1min' is not like"),
    (_broken(CANDLE, volume=-1.0), "volume -1.0 is not a non-negative"),
    (_broken(CANDLE, trades=-1), "trades -1 is negative"),
    (_broken(BOOK, bids=[(98.0, 1.0), (99.0, 1.0)]), "bids prices are not strictly desc"),
    (_broken(BOOK, asks=[(101.0, 0.0)]), "asks size 0.0 is not a positive"),
    (_broken(BOOK, asks=[(99.0, 1.0)]), "book is crossed: best bid 99.0 >= best ask 99.0"),
    (_broken(FUNDING, rate=math.inf), "rate inf is not a finite number"),
    (_broken(FUNDING, mark_px=0.0), "mark_px 0.0 is not a positive"),
]


@pytest.mark.parametrize(("record", "message"), BROKEN)
def test_broken_rule_is_named(record: Record, message: str) -> None:
    with pytest.raises(InvalidRecordError, match=message):
        validate(record, LIMITS)


def test_known_symbols_are_enforced_when_given() -> None:
    limits = dataclasses.replace(LIMITS, known_symbols={"ETH-USDT"})
    with pytest.raises(InvalidRecordError, match="symbol 'BTC-USDT' is not configured for binance"):
        validate(TRADE, limits)
    validate(_broken(TRADE, symbol="ETH-USDT"), limits)


def test_quote_sizes_may_be_unknown() -> None:
    validate(_broken(QUOTE, bid_sz=None, ask_sz=None), LIMITS)


def test_clock_skew_allowance() -> None:
    validate(_broken(TRADE, ts=NOW_NS + 4_999_999_999), LIMITS)


@pytest.mark.parametrize("record", [TRADE, QUOTE, CANDLE, BOOK, FUNDING])
def test_examples_are_valid(record: Record) -> None:
    validate(record, LIMITS)


LATEST_TS = LIMITS.now_ns + LIMITS.max_future_skew_ns


@given(records)
def test_fast_check_passes_what_validate_accepts(record: Record) -> None:
    assert passes(record, LATEST_TS, None)


@pytest.mark.parametrize(("record", "message"), BROKEN)
def test_fast_check_refuses_every_broken_rule(record: Record, message: str) -> None:
    assert not passes(record, LATEST_TS, None)


def test_intervals_the_fast_check_does_not_list_still_pass_validate() -> None:
    candle = _broken(CANDLE, interval="120m")
    assert not passes(candle, LATEST_TS, None)
    validate(candle, LIMITS)
