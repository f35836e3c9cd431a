"""Bybit v5 spot and linear: documented frame formats, malformed frames, spot vs linear,
the split of a subscription across endpoints, and the order book sequencing.

No public Bybit v5 capture is usable here: the frames follow Bybit's v5 documentation
(https://bybit-exchange.github.io/docs/v5/ws/connect and the public topic pages).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from marketstream.config import load_config
from marketstream.errors import ConfigError
from marketstream.ingest.books import BookKeeper
from marketstream.ingest.service import plan_connections
from marketstream.schemas.records import (
    Candle,
    Funding,
    Liquidation,
    OpenInterest,
    Quote,
    Side,
    Trade,
)
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, Mapper
from marketstream.venues.base.venue import Sequencing, Subscription
from marketstream.venues.bybit.mapper import BybitMapper
from marketstream.venues.bybit.markets import market_of_url
from marketstream.venues.bybit.venue import BYBIT
from marketstream.venues.registry import get_venue
from tests.venues.bybit.instruments import INSTRUMENTS
from tests.venues.conftest import assert_valid

RECV = 1_700_000_000_123_456_789  # a receive time in ns, after every documented event time
MS = 1_000_000
SPOT_URL = "wss://stream.bybit.com/v5/public/spot"
LINEAR_URL = "wss://stream.bybit.com/v5/public/linear"
CONFIG = Path(__file__).resolve().parents[3] / "configs" / "pipeline.yaml"

assert BYBIT.split is not None
assert BYBIT.mapper_for_recording is not None
assert BYBIT.resubscribe_book is not None
split = BYBIT.split
resubscribe_book = BYBIT.resubscribe_book

spot = BYBIT.make_mapper(["BTC-USDT"], INSTRUMENTS)
linear = BYBIT.make_mapper(["BTC-USDT-PERP"], INSTRUMENTS)


def for_recording(url: str) -> Mapper:
    assert BYBIT.mapper_for_recording is not None
    return BYBIT.mapper_for_recording(url, INSTRUMENTS)


def _frame(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _map_one(mapper: Mapper, frame: str | bytes) -> Item:
    items = mapper(frame, RECV)
    assert len(items) == 1
    return items[0]


# --- documented frames -----------------------------------------------------------------------

TRADE = {
    "T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50",
    "L": "PlusTick", "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": False,
    "seq": 1783284617,
}  # fmt: skip
PUBLIC_TRADE = {
    "topic": "publicTrade.BTCUSDT",
    "type": "snapshot",
    "ts": 1672304486868,
    "data": [TRADE, {**TRADE, "T": 1672304486866, "S": "Sell", "v": "0.25", "i": "2290"}],
}
BOOK_SNAPSHOT = {
    "topic": "orderbook.50.BTCUSDT",
    "type": "snapshot",
    "ts": 1672304484978,
    "data": {
        "s": "BTCUSDT",
        "b": [["16493.50", "0.006"], ["16493.00", "0.100"]],
        "a": [["16611.00", "0.029"], ["16612.00", "0.213"]],
        "u": 18521288,
        "seq": 7961638724,
    },
    "cts": 1672304484976,
}
BOOK_DELTA = {
    "topic": "orderbook.50.BTCUSDT",
    "type": "delta",
    "ts": 1687940967466,
    "data": {
        "s": "BTCUSDT",
        "b": [["30247.20", "30.028"], ["30240.00", "0"]],
        "a": [["30248.70", "0"], ["30249.30", "0.892"]],
        "u": 177400507,
        "seq": 66544703342,
    },
    "cts": 1687940967464,
}
TOP_OF_BOOK = {
    "topic": "orderbook.1.BTCUSDT",
    "type": "snapshot",
    "ts": 1672304484978,
    "data": {
        "s": "BTCUSDT",
        "b": [["16493.50", "0.006"]],
        "a": [["16611.00", "0.029"]],
        "u": 18521288,
        "seq": 7961638724,
    },
    "cts": 1672304484976,
}
KLINE_DATA = {
    "start": 1672324800000, "end": 1672324859999, "interval": "1", "open": "16649.5",
    "close": "16677", "high": "16677", "low": "16608", "volume": "2.081",
    "turnover": "34666.4005", "confirm": False, "timestamp": 1672324855882,
}  # fmt: skip
TICKER_DATA = {
    "symbol": "BTCUSDT", "tickDirection": "PlusTick", "price24hPcnt": "0.017103",
    "lastPrice": "17216.00", "prevPrice24h": "16926.50", "highPrice24h": "17281.50",
    "lowPrice24h": "16915.00", "prevPrice1h": "17238.00", "markPrice": "17217.33",
    "indexPrice": "17227.36", "openInterest": "68744.761",
    "openInterestValue": "1183601235.91", "turnover24h": "1570383121.943499",
    "volume24h": "91705.276", "nextFundingTime": "1673280000000", "fundingRate": "-0.000212",
    "bid1Price": "17215.50", "bid1Size": "84.489", "ask1Price": "17216.00", "ask1Size": "83.020",
}  # fmt: skip


def _kline(**changes: Any) -> dict[str, Any]:
    return {
        "topic": "kline.1.BTCUSDT",
        "data": [{**KLINE_DATA, **changes}],
        "ts": 1672324855882,
        "type": "snapshot",
    }


def _ticker(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "topic": "tickers.BTCUSDT",
        "type": kind,
        "data": {"symbol": "BTCUSDT", **data},
        "cs": 24987956059,
        "ts": 1673272861686,
    }


def test_public_trades_one_record_each_with_the_takers_side() -> None:
    assert spot(_frame(PUBLIC_TRADE), RECV) == [
        Trade("bybit", "BTC-USDT", 1672304486865 * MS, RECV,
              "20f43950-d8dd-5b31-9112-a178eb6023af", 16578.5, 0.001, "buy"),
        Trade("bybit", "BTC-USDT", 1672304486866 * MS, RECV, "2290", 16578.5, 0.25, "sell"),
    ]  # fmt: skip


@pytest.mark.parametrize(("taker", "side"), [("Buy", "buy"), ("Sell", "sell")])
def test_linear_trade_is_the_perpetual(taker: str, side: Side) -> None:
    frame = _frame({**PUBLIC_TRADE, "data": [{**TRADE, "S": taker}]})
    trade = _map_one(linear, frame)
    assert isinstance(trade, Trade)
    assert (trade.exchange, trade.symbol, trade.side) == ("bybit", "BTC-USDT-PERP", side)


def test_orderbook_1_snapshot_is_a_quote() -> None:
    assert _map_one(spot, _frame(TOP_OF_BOOK)) == Quote(
        "bybit", "BTC-USDT", 1672304484978 * MS, RECV, 16493.5, 0.006, 16611.0, 0.029
    )
    quote = _map_one(linear, _frame(TOP_OF_BOOK))
    assert isinstance(quote, Quote)
    assert quote.symbol == "BTC-USDT-PERP"


def test_orderbook_50_snapshot_and_delta_are_book_updates() -> None:
    assert _map_one(linear, _frame(BOOK_SNAPSHOT)) == BookUpdate(
        "bybit",
        "BTC-USDT-PERP",
        1672304484976 * MS,  # cts, the matching engine's time
        RECV,
        [(16493.5, 0.006), (16493.0, 0.1)],
        [(16611.0, 0.029), (16612.0, 0.213)],
        is_snapshot=True,
        last_seq=18521288,
    )
    assert _map_one(spot, _frame(BOOK_DELTA)) == BookUpdate(
        "bybit",
        "BTC-USDT",
        1687940967464 * MS,
        RECV,
        [(30247.2, 30.028), (30240.0, 0.0)],  # size 0 removes the level
        [(30248.7, 0.0), (30249.3, 0.892)],
        is_snapshot=False,
        last_seq=177400507,
    )


def test_book_without_cts_uses_the_message_time() -> None:
    frame = {k: v for k, v in BOOK_SNAPSHOT.items() if k != "cts"}
    update = _map_one(spot, _frame(frame))
    assert isinstance(update, BookUpdate)
    assert update.ts == 1672304484978 * MS


@pytest.mark.parametrize("confirm", [True, False])
def test_kline_is_a_one_minute_candle(confirm: bool) -> None:
    assert _map_one(spot, _frame(_kline(confirm=confirm))) == Candle(
        "bybit", "BTC-USDT", "1m", 1672324800000 * MS,
        16649.5, 16677.0, 16608.0, 16677.0, 2.081, None, confirm,
    )  # fmt: skip


@pytest.mark.parametrize(("bybit", "interval"), [("5", "5m"), ("60", "1h"), ("D", "1d")])
def test_kline_intervals_are_normalized(bybit: str, interval: str) -> None:
    candle = _map_one(linear, _frame(_kline(interval=bybit)))
    assert isinstance(candle, Candle)
    assert (candle.symbol, candle.interval) == ("BTC-USDT-PERP", interval)


def test_ticker_snapshot_is_funding_and_open_interest() -> None:
    funding, open_interest = linear(_frame(_ticker("snapshot", TICKER_DATA)), RECV)
    assert funding == Funding(
        "bybit",
        "BTC-USDT-PERP",
        1673272861686 * MS,
        -0.000212,
        17217.33,
        17227.36,
        1673280000000 * MS,
    )
    # linear open interest is in coins already; its value is in USDT
    assert open_interest == OpenInterest(
        "bybit", "BTC-USDT-PERP", 1673272861686 * MS, RECV, 68744.761, 1183601235.91
    )


def test_ticker_delta_with_a_new_rate_is_funding_with_what_it_carries() -> None:
    frame = _frame(_ticker("delta", {"fundingRate": "0.0001", "markPrice": "17218.00"}))
    assert _map_one(linear, frame) == Funding(
        "bybit", "BTC-USDT-PERP", 1673272861686 * MS, 0.0001, 17218.0, None, None
    )


@pytest.mark.parametrize(
    "data",
    [
        {"bid1Price": "17215.00", "bid1Size": "84.5", "markPrice": "17217.40"},
        {"fundingRate": "", "lastPrice": "17216.50"},  # empty: not carried
    ],
)
def test_ticker_delta_without_a_rate_has_no_funding_news(data: dict[str, Any]) -> None:
    assert linear(_frame(_ticker("delta", data)), RECV) == []


def test_empty_ticker_fields_are_absent_not_zero() -> None:
    data = {**TICKER_DATA, "markPrice": "", "nextFundingTime": ""}
    funding, _ = linear(_frame(_ticker("snapshot", data)), RECV)
    assert isinstance(funding, Funding)
    assert (funding.mark_px, funding.index_px, funding.next_ts) == (None, 17227.36, None)


def test_mapped_records_pass_validation() -> None:
    frames = [PUBLIC_TRADE, TOP_OF_BOOK, BOOK_SNAPSHOT, _kline(), _ticker("snapshot", TICKER_DATA)]
    for frame in frames:
        for item in linear(_frame(frame), RECV):
            assert_valid(item, RECV)


# --- control frames --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        {"success": True, "ret_msg": "subscribe", "conn_id": "2324d924", "req_id": "1",
         "op": "subscribe"},
        {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "cejreassvfrsfvb9v1a0-2m"},
        {"success": True, "ret_msg": "", "op": "unsubscribe", "conn_id": "c"},
        {"success": True, "ret_msg": "pong", "conn_id": "0970e817", "op": "ping"},
        {"success": True, "ret_msg": "pong", "conn_id": "465772b1", "req_id": "", "op": "ping"},
        {"req_id": "test", "op": "pong", "args": ["1675418560633"], "conn_id": "cfcb4ocsv"},
    ],
)  # fmt: skip
def test_acknowledgements_and_pongs_map_to_nothing(reply: dict[str, Any]) -> None:
    assert spot(_frame(reply), RECV) == []
    assert linear(orjson.dumps(reply), RECV) == []


def test_a_failed_subscription_raises_with_bybits_message() -> None:
    reply = {
        "success": False,
        "ret_msg": "Invalid symbol :[publicTrade.XUSDT]",
        "conn_id": "c",
        "op": "subscribe",
    }
    with pytest.raises(
        FrameError, match=r"^bybit spot: subscribe failed: Invalid symbol :\[publicTrade.XUSDT\]$"
    ):
        spot(_frame(reply), RECV)


# --- malformed frames ------------------------------------------------------------------------


def _trade_with(**changes: Any) -> str:
    return _frame({**PUBLIC_TRADE, "data": [{**TRADE, **changes}]})


def _without(message: dict[str, Any], key: str) -> str:
    return _frame({k: v for k, v in message.items() if k != key})


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", "bybit linear: not JSON: "),
        ("[1, 2]", "bybit linear: expected a JSON object, got list"),
        (_frame({**PUBLIC_TRADE, "topic": 7}), "topic 7 is not a string"),
        (_frame({**PUBLIC_TRADE, "topic": "insurance.BTCUSDT"}), "unknown topic 'insurance"),
        (_frame({**PUBLIC_TRADE, "topic": "publicTrade."}), r"unknown topic 'publicTrade\.'"),
        (_frame({"ret_msg": "hello"}), "no topic and no known op in a frame with fields"),
        (_without(PUBLIC_TRADE, "data"), "publicTrade: field 'data' is missing"),
        (_frame({**PUBLIC_TRADE, "data": {}}), "publicTrade: data {} is not a list of JSON"),
        (_frame({**PUBLIC_TRADE, "data": [1]}), r"publicTrade: data \[1\] is not a list of JSON"),
        (_trade_with(p="abc"), "publicTrade: p 'abc' is not a decimal number"),
        (_trade_with(S="Short"), "publicTrade: S 'Short' is not 'Buy' or 'Sell'"),
        (_trade_with(T="1672304486865"), "publicTrade: T '1672304486865' is not an integer time"),
        (_frame({**BOOK_SNAPSHOT, "type": "full"}), "orderbook: type 'full' is not 'snapshot'"),
        (
            _frame({**BOOK_SNAPSHOT, "topic": "orderbook.BTCUSDT"}),
            "topic 'orderbook.BTCUSDT' is not orderbook.<depth>.<symbol>",
        ),
        (
            _frame({**BOOK_SNAPSHOT, "data": {**BOOK_SNAPSHOT["data"], "u": None}}),  # type: ignore[dict-item]
            "orderbook: u None is not an integer",
        ),
        (
            _frame({**BOOK_DELTA, "data": {**BOOK_DELTA["data"], "b": [["1.0"]]}}),  # type: ignore[dict-item]
            r"orderbook: b \[\['1.0'\]\] is not a list of \[price, size\]",
        ),
        (
            _frame({**TOP_OF_BOOK, "type": "delta", "data": {**TOP_OF_BOOK["data"], "u": 1}}),  # type: ignore[dict-item]
            r"orderbook.1: delta u 1 of BTCUSDT (before any snapshot|does not follow u \d+)",
        ),
        (
            _frame({**TOP_OF_BOOK, "data": {**TOP_OF_BOOK["data"], "a": []}}),  # type: ignore[dict-item]
            "orderbook.1: BTCUSDT has an empty side: no quote without both",
        ),
        (_frame(_kline(interval="M")), "kline: interval 'M' is not supported"),
        (_frame(_kline(confirm="yes")), "kline: confirm 'yes' is not true or false"),
        (
            _frame(_ticker("snapshot", {**TICKER_DATA, "nextFundingTime": "soon"})),
            "tickers: nextFundingTime 'soon' is not a time in milliseconds",
        ),
        (
            _frame(_ticker("snapshot", {**TICKER_DATA, "fundingRate": "x"})),
            "tickers: fundingRate 'x' is not a decimal number",
        ),
    ],
)
def test_malformed_frame_names_what_is_wrong(frame: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        linear(frame, RECV)


def _data_with(message: dict[str, Any], **changes: Any) -> str:
    return _frame({**message, "data": {**message["data"], **changes}})


LIQUIDATED = {"T": 1739502302929, "s": "BTCUSDT", "S": "Sell", "v": "0.003", "p": "95000.5"}
LIQUIDATION = {
    "topic": "allLiquidation.BTCUSDT",
    "type": "snapshot",
    "ts": 1739502303204,
    "data": [LIQUIDATED],
}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            _data_with(BOOK_DELTA, b=[["abc", "1"]]),
            r"^bybit linear: orderbook: b \[\['abc', '1'\]\] is not a list of \[price, size\]",
        ),
        (
            _data_with(BOOK_DELTA, a=[["1", "2", "3"]]),
            r"^bybit linear: orderbook: a \[\['1', '2', '3'\]\] is not a list of \[price, size\]",
        ),
        (
            _data_with(BOOK_DELTA, u="177400507"),
            "^bybit linear: orderbook: u '177400507' is not an",
        ),
        (
            _frame({**BOOK_DELTA, "cts": "1687940967464"}),
            "^bybit linear: orderbook: cts '1687940967464' is not an integer time",
        ),
        (_data_with(TOP_OF_BOOK, u=True), "^bybit linear: orderbook.1: u True is not an integer"),
        (
            _frame({**TOP_OF_BOOK, "ts": None}),
            "^bybit linear: orderbook.1: ts None is not an integer time",
        ),
        (_frame(_kline(open="x")), "^bybit linear: kline: open 'x' is not a decimal number"),
        (_frame(_kline(start="1")), "^bybit linear: kline: start '1' is not an integer time"),
        (_frame(_kline(interval=1)), "^bybit linear: kline: interval 1 is not a string"),
        (
            _frame(_ticker("delta", {"markPrice": [1]})),
            r"^bybit linear: tickers: markPrice \[1\] is not a decimal number",
        ),
        (
            _frame(_ticker("delta", {"openInterest": "many"})),
            "^bybit linear: tickers: openInterest 'many' is not a decimal number",
        ),
        (
            _frame({**LIQUIDATION, "data": [{**LIQUIDATED, "p": "?"}]}),
            r"^bybit linear: liquidation: p '\?' is not a decimal number",
        ),
        (
            _frame({**LIQUIDATION, "data": [{**LIQUIDATED, "S": "Long"}]}),
            "^bybit linear: liquidation: S 'Long' is not 'Buy' or 'Sell'",
        ),
    ],
)
def test_a_push_its_struct_refuses_is_explained_field_by_field(frame: str, message: str) -> None:
    """The typed topics decode into Structs first; a push whose field has the wrong type is
    read again as JSON, which names the field, its value and what was expected."""
    with pytest.raises(FrameError, match=message):
        linear(frame, RECV)


def test_typed_pushes_map_as_the_json_path_does() -> None:
    """A dated future's empty funding rate and an inverse kline's turnover are read as on
    the JSON path; the liquidation's side is the order's."""
    assert linear(_frame(_ticker("snapshot", {**TICKER_DATA, "fundingRate": ""})), RECV) == [
        OpenInterest("bybit", "BTC-USDT-PERP", 1673272861686 * MS, RECV, 68744.761, 1183601235.91)
    ]
    [liquidation] = linear(_frame(LIQUIDATION), RECV)
    assert liquidation == Liquidation(
        "bybit", "BTC-USDT-PERP", 1739502302929 * MS, RECV, "buy", 95000.5, 0.003
    )


def test_spot_has_no_tickers_topic() -> None:
    with pytest.raises(FrameError, match=r"^bybit spot: unknown topic 'tickers\.BTCUSDT'$"):
        spot(_frame(_ticker("snapshot", TICKER_DATA)), RECV)


# --- symbols: spot vs linear -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "symbol"),
    [
        (SPOT_URL, "ETH-USDT"),
        (LINEAR_URL, "ETH-USDT-PERP"),
        (f"{LINEAR_URL}/", "ETH-USDT-PERP"),
        ("ws://127.0.0.1:8765/v5/public/spot", "ETH-USDT"),
        ("ws://[::1]:8765/v5/public/linear?x=1", "ETH-USDT-PERP"),
    ],
)
def test_recording_mappers_tell_the_market_by_url(url: str, symbol: str) -> None:
    frame = _frame({**PUBLIC_TRADE, "topic": "publicTrade.ETHUSDT"})
    trades = for_recording(url)(frame, RECV)
    assert {t.symbol for t in trades} == {symbol}


@pytest.mark.parametrize("url", ["", "wss://stream.bybit.com/v5/public/option", "https://x/y"])
def test_a_recorded_url_of_no_known_market_refuses_its_frames(url: str) -> None:
    assert market_of_url(url) is None
    with pytest.raises(FrameError, match="ends in none of /spot, /linear, /inverse"):
        for_recording(url)(_frame(PUBLIC_TRADE), RECV)


def test_the_configured_symbols_tell_the_market_of_the_same_frame() -> None:
    frame = _frame(_kline())
    spot_mapper = BYBIT.make_mapper(["BTC-USDT", "ETH-USDT"], INSTRUMENTS)
    assert [c.symbol for c in spot_mapper(frame, RECV)] == ["BTC-USDT"]
    assert [c.symbol for c in BYBIT.make_mapper(["ETH-USDT-PERP"], INSTRUMENTS)(frame, RECV)] == [
        "BTC-USDT-PERP"  # not configured, named by its market's instrument list
    ]


@pytest.mark.parametrize(
    ("native", "symbol"),
    [
        ("1000PEPEUSDT", "1000PEPE-USDT-PERP"),
        ("ETHPERP", "ETH-USDC-PERP"),  # Bybit's USDC perpetuals are named BASE + PERP
        ("SOLUSDT", "SOL-USDT-PERP"),
        ("BTCUSDT-26DEC25", "BTC-USDT-20251226"),
        ("BTC-26DEC25", "BTC-USDC-20251226"),
    ],
)
def test_linear_natives_are_named_from_the_instrument_list(native: str, symbol: str) -> None:
    trade = _map_one(
        for_recording(LINEAR_URL),
        _frame({**PUBLIC_TRADE, "topic": f"publicTrade.{native}", "data": [TRADE]}),
    )
    assert trade.symbol == symbol


@pytest.mark.parametrize("native", ["BTCUSDC", "FOOXYZ", "BTCUSD"])
def test_a_native_name_the_metadata_does_not_list_is_refused_by_name(native: str) -> None:
    """No list of quote assets guesses a name: BTCUSDC is not a linear instrument (Bybit's
    USDC perpetual is BTCPERP), BTCUSD is inverse, FOOXYZ nothing."""
    frame = _frame({**PUBLIC_TRADE, "topic": f"publicTrade.{native}"})
    with pytest.raises(
        FrameError,
        match=f"^bybit linear: symbol '{native}' is neither configured nor in the linear "
        "instrument list",
    ):
        for_recording(LINEAR_URL)(frame, RECV)


def test_configured_symbols_map_exactly_even_when_no_split_would_find_them() -> None:
    frame = _frame({**PUBLIC_TRADE, "topic": "publicTrade.FOOXYZ"})
    trades = BYBIT.make_mapper(["FOO-XYZ"])(frame, RECV)
    assert {t.symbol for t in trades} == {"FOO-XYZ"}


def test_a_configured_symbol_the_metadata_does_not_list_counts_in_its_endpoints_unit() -> None:
    """Metadata given, but not of this contract: Bybit fixes the size unit of every instrument
    on an endpoint (coins on linear, 1 USD contracts on inverse), so the configured symbol
    is sized in it; the native name is the exact join of the configured one."""
    frame = _frame({**PUBLIC_TRADE, "topic": "publicTrade.DOGEUSDT", "data": [
        {**TRADE, "s": "DOGEUSDT", "v": "250", "p": "0.0812"}]})  # fmt: skip
    trade = _map_one(BYBIT.make_mapper(["DOGE-USDT-PERP"], INSTRUMENTS), frame)
    assert isinstance(trade, Trade)
    assert (trade.symbol, trade.size) == ("DOGE-USDT-PERP", 250.0)
    inverse = BYBIT.make_mapper(["BTC-USD-PERP"], ())
    frame = _frame({**PUBLIC_TRADE, "topic": "publicTrade.BTCUSD", "data": [
        {**TRADE, "s": "BTCUSD", "v": "16578", "p": "16578.50"}]})  # fmt: skip
    inverse_trade = _map_one(inverse, frame)
    assert isinstance(inverse_trade, Trade)
    assert (inverse_trade.symbol, inverse_trade.size) == ("BTC-USD-PERP", 16578 / 16578.5)


def test_a_name_neither_configured_nor_listed_is_refused_not_split() -> None:
    """No quote list guesses where BTCUSDT splits: without metadata or configuration for it,
    a frame's symbol is refused with a reason naming it."""
    one_trade = _frame({**PUBLIC_TRADE, "data": [TRADE]})
    with pytest.raises(FrameError, match="symbol 'BTCUSDT' is neither configured nor in"):
        for_recording_without_metadata(LINEAR_URL)(one_trade, RECV)
    assert BYBIT.mapper_for_recording is not None
    linear_trade = _map_one(BYBIT.mapper_for_recording(LINEAR_URL, INSTRUMENTS), one_trade)
    assert isinstance(linear_trade, Trade)
    assert (linear_trade.symbol, linear_trade.size) == ("BTC-USDT-PERP", 0.001)


def for_recording_without_metadata(url: str) -> Mapper:
    assert BYBIT.mapper_for_recording is not None
    return BYBIT.mapper_for_recording(url, ())


@pytest.mark.parametrize("symbols", [[], ["BTC-USDT", "BTC-USDT-PERP"]])
def test_a_mapper_serves_exactly_one_market(symbols: list[str]) -> None:
    with pytest.raises(ConfigError, match="one connection serves one market"):
        BYBIT.make_mapper(symbols)


# --- subscriptions, endpoints and rules ------------------------------------------------------

MIXED = Subscription(
    ("BTC-USDT", "BTC-USDT-PERP", "ETH-USDT", "ETH-USDT-PERP"),
    ("trades", "quotes", "candles", "books", "funding"),
)
BASE = "wss://stream.bybit.com/v5/public"


def test_a_mixed_subscription_splits_by_market_with_funding_on_perps_only() -> None:
    spot_part, linear_part = split(MIXED)
    assert spot_part == Subscription(
        ("BTC-USDT", "ETH-USDT"), ("trades", "quotes", "candles", "books")
    )
    assert linear_part == Subscription(("BTC-USDT-PERP", "ETH-USDT-PERP"), MIXED.channels)
    assert BYBIT.connect_url(BASE, spot_part) == f"{BASE}/spot"
    assert BYBIT.connect_url(f"{BASE}/", linear_part) == f"{BASE}/linear"
    assert BYBIT.connect_url(f"{BASE}/spot", linear_part) == f"{BASE}/linear"
    assert BYBIT.connect_url("ws://127.0.0.1:9/v5/public", spot_part) == (
        "ws://127.0.0.1:9/v5/public/spot"
    )


def test_one_market_is_one_part() -> None:
    perps = Subscription(("BTC-USDT-PERP",), ("funding",))
    assert split(perps) == [perps]


def test_spot_symbols_with_funding_alone_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="spot symbols \\['BTC-USDT'\\] have no channel"):
        split(Subscription(("BTC-USDT", "BTC-USDT-PERP"), ("funding",)))


def test_a_mixed_subscription_has_no_single_url() -> None:
    with pytest.raises(ConfigError, match="split the subscription by market first"):
        BYBIT.connect_url(BASE, MIXED)
    with pytest.raises(ConfigError, match="split the subscription by market first"):
        BYBIT.subscribe_messages(MIXED)


def test_spot_subscribe_requests_hold_at_most_10_topics() -> None:
    spot_part = Subscription(
        ("BTC-USDT", "ETH-USDT", "SOL-USDT"), ("trades", "quotes", "candles", "books")
    )
    messages = [orjson.loads(m) for m in BYBIT.subscribe_messages(spot_part)]
    assert [m["op"] for m in messages] == ["subscribe", "subscribe"]
    assert [len(m["args"]) for m in messages] == [10, 2]
    assert messages[0]["args"][:4] == [
        "publicTrade.BTCUSDT", "orderbook.1.BTCUSDT", "kline.1.BTCUSDT", "orderbook.50.BTCUSDT",
    ]  # fmt: skip


def test_linear_subscribe_includes_tickers_for_funding() -> None:
    (message,) = BYBIT.subscribe_messages(split(MIXED)[1])
    assert orjson.loads(message) == {
        "op": "subscribe",
        "args": [
            "publicTrade.BTCUSDT", "orderbook.1.BTCUSDT", "kline.1.BTCUSDT",
            "orderbook.50.BTCUSDT", "tickers.BTCUSDT", "publicTrade.ETHUSDT",
            "orderbook.1.ETHUSDT", "kline.1.ETHUSDT", "orderbook.50.ETHUSDT", "tickers.ETHUSDT",
        ],
    }  # fmt: skip


def test_funding_on_a_spot_connection_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="funding is offered for derivatives only"):
        BYBIT.subscribe_messages(Subscription(("BTC-USDT",), ("trades", "funding")))


def test_resubscribing_a_book_asks_for_a_fresh_snapshot() -> None:
    assert [orjson.loads(m) for m in resubscribe_book("ETH-USDT-PERP")] == [
        {"op": "unsubscribe", "args": ["orderbook.50.ETHUSDT"]},
        {"op": "subscribe", "args": ["orderbook.50.ETHUSDT"]},
    ]


def test_exchange_rules() -> None:
    assert get_venue("bybit") is BYBIT
    assert BYBIT.sequencing is Sequencing.INCREMENT
    assert BYBIT.channels == {
        "trades", "quotes", "candles", "books", "funding", "liquidations", "open_interest"
    }  # fmt: skip
    assert BYBIT.ping_message is not None
    assert orjson.loads(BYBIT.ping_message) == {"op": "ping"}
    assert BYBIT.ping_interval_s == 20.0
    assert (BYBIT.checksum, BYBIT.book_depth_limit) == (None, 50)
    assert BYBIT.snapshot_requests is None  # the feed sends its own snapshots


def test_the_shipped_configuration_plans_one_connection_per_market() -> None:
    config = load_config(CONFIG, environ={})
    plans = plan_connections(config, ["bybit"])
    assert [
        (p.subscription.symbols, BYBIT.connect_url(p.config.url, p.subscription)) for p in plans
    ] == [
        (("BTC-USDT", "ETH-USDT"), f"{BASE}/spot"),
        (("BTC-USDT-PERP", "ETH-USDT-PERP"), f"{BASE}/linear"),
    ]


# --- order books: INCREMENT sequencing -------------------------------------------------------


def _book(kind: str, u: int, ts_ms: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    return _frame(
        {
            "topic": "orderbook.50.BTCUSDT",
            "type": kind,
            "ts": ts_ms,
            "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": 7961638724 + u},
            "cts": ts_ms,
        }
    )


def _keeper() -> BookKeeper:
    return BookKeeper("bybit", BYBIT.book_rules, depth=50, interval_ns=1)


def _apply(keeper: BookKeeper, frame: str) -> Any:
    (update,) = linear(frame, RECV)
    assert isinstance(update, BookUpdate)
    return keeper.apply(update)


T0 = 1_672_304_484_000


def test_deltas_follow_by_one_and_a_skipped_update_id_is_a_gap() -> None:
    keeper = _keeper()
    _apply(keeper, _book("snapshot", 100, T0, [["10", "1"]], [["11", "1"]]))
    applied = _apply(keeper, _book("delta", 101, T0 + 1, [["10.5", "2"]], [["11", "0"]]))
    assert not applied.gap
    assert applied.books[-1].bids == [(10.5, 2.0), (10.0, 1.0)]
    assert applied.books[-1].asks == []
    missed = _apply(keeper, _book("delta", 103, T0 + 2, [["10.6", "1"]], []))
    assert (missed.gap, missed.needs_snapshot) == (True, True)
    book = keeper.book("BTC-USDT-PERP")
    assert (book.stats.gaps, book.synced) == (1, False)
    # The resubscribed feed answers with a snapshot newer than the buffered delta.
    resynced = _apply(keeper, _book("snapshot", 110, T0 + 3, [["10", "3"]], [["12", "1"]]))
    assert not resynced.gap
    assert (book.stats.resyncs, book.last_seq, book.bids) == (1, 110, {10.0: 3.0})


def test_a_snapshot_with_u_1_after_a_bybit_restart_replaces_the_book() -> None:
    keeper = _keeper()
    _apply(keeper, _book("snapshot", 500, T0, [["10", "1"], ["9", "1"]], [["11", "1"]]))
    _apply(keeper, _book("delta", 501, T0 + 1, [["9", "0"]], []))
    restarted = _apply(keeper, _book("snapshot", 1, T0 + 2, [["20", "5"]], [["21", "5"]]))
    assert not restarted.gap
    assert restarted.books[-1].bids == [(20.0, 5.0)]
    after = _apply(keeper, _book("delta", 2, T0 + 3, [["20.5", "1"]], []))
    assert not after.gap
    book = keeper.book("BTC-USDT-PERP")
    assert (book.stats.gaps, book.stats.resyncs, book.last_seq) == (0, 1, 2)
    assert book.bids == {20.0: 5.0, 20.5: 1.0}


def test_the_book_keeps_the_feeds_50_levels() -> None:
    keeper = _keeper()
    bids = [[str(100 - i), "1"] for i in range(50)]
    _apply(keeper, _book("snapshot", 7, T0, bids, [["200", "1"]]))
    _apply(keeper, _book("delta", 8, T0 + 1, [["100.5", "1"]], []))  # no removal sent for 51
    book = keeper.book("BTC-USDT-PERP")
    assert len(book.bids) == 50
    assert 51.0 not in book.bids
    assert 100.5 in book.bids


# --- offline normalize by recorded URL -------------------------------------------------------


def test_recorded_frames_are_named_by_their_recorded_url() -> None:
    """Offline, the URL a frame was recorded from says its market (`mapper_for_recording`).
    `normalize` passes the instrument catalog to it (the catalog is not this module's)."""
    frames = [
        (SPOT_URL, PUBLIC_TRADE),
        (LINEAR_URL, PUBLIC_TRADE),
        (LINEAR_URL, _ticker("snapshot", TICKER_DATA)),
        (SPOT_URL, {"success": True, "ret_msg": "pong", "conn_id": "c", "op": "ping"}),
    ]
    mappers = {url: for_recording(url) for url in (SPOT_URL, LINEAR_URL)}
    records = [item for url, message in frames for item in mappers[url](_frame(message), RECV)]
    assert [(type(r).__name__, r.symbol) for r in records] == [
        ("Trade", "BTC-USDT"),
        ("Trade", "BTC-USDT"),
        ("Trade", "BTC-USDT-PERP"),
        ("Trade", "BTC-USDT-PERP"),
        ("Funding", "BTC-USDT-PERP"),
        ("OpenInterest", "BTC-USDT-PERP"),
    ]


# --- purity ----------------------------------------------------------------------------------


def test_mapping_is_pure() -> None:
    frame = _frame(BOOK_SNAPSHOT)
    first = linear(frame, RECV)
    linear(_book("delta", 18521290, T0, [], []), RECV + 1)
    with pytest.raises(FrameError):
        linear("{", RECV)
    assert linear(frame, RECV) == first
    assert first[0] is not linear(frame, RECV)[0]


def test_mapper_holds_read_only_names() -> None:
    """Its names and size rules are read-only; its only state is the orderbook.1 tops and the
    last mark price per symbol (see test_bybit_captures.py)."""
    mapper = BYBIT.make_mapper(["BTC-USDT"])
    assert isinstance(mapper, BybitMapper)
    assert not hasattr(mapper, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mapper.listed = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        mapper.listed["ETHUSDT"] = mapper.listed["BTCUSDT"]  # type: ignore[index]
