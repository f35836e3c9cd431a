"""Bybit instrument metadata (the real v5 records ccxt ships, MIT: LICENSE-MIT-ccxt.txt) and
the feed rules of the three markets: exact native names, endpoints and topics."""

from __future__ import annotations

import re

import orjson
import pytest

from marketstream.errors import ConfigError
from marketstream.schemas.records import Instrument
from marketstream.venues.base.contracts import size_rule
from marketstream.venues.base.mapper import FrameError
from marketstream.venues.base.venue import Subscription
from marketstream.venues.bybit.markets import native
from marketstream.venues.bybit.venue import BYBIT
from tests.venues.bybit.instruments import READ_TS, captured

BASE = "wss://stream.bybit.com/v5/public"


def test_the_captured_records() -> None:
    spot, linear, inverse, zrx = captured()
    # spot BTCUSDT: priceFilter.tickSize "0.1", lotSizeFilter.basePrecision "0.000001"
    assert spot == Instrument(
        "bybit", "BTC-USDT", READ_TS, "BTCUSDT", "spot", "BTC", "USDT", "USDT", 1.0, 1.0, 0.1,
        0.000001, None, "trading",
    )  # fmt: skip
    # linear BTCUSDT LinearPerpetual: tickSize "0.10", qtyStep "0.001", settleCoin USDT,
    # deliveryTime "0" (none)
    assert linear == Instrument(
        "bybit", "BTC-USDT-PERP", READ_TS, "BTCUSDT", "linear_perpetual", "BTC", "USDT", "USDT",
        1.0, 1.0, 0.1, 0.001, None, "trading",
    )  # fmt: skip
    # inverse BTCUSD InversePerpetual: qtyStep "1" (a contract is 1 USD), settleCoin BTC
    assert inverse == Instrument(
        "bybit", "BTC-USD-PERP", READ_TS, "BTCUSD", "inverse_perpetual", "BTC", "USD", "BTC",
        1.0, 1.0, 0.1, 1.0, None, "trading",
    )  # fmt: skip
    assert size_rule(inverse).size(28560.0, 28560.0) == 1.0  # 28560 USD contracts at 28560 = 1 BTC
    assert (zrx.symbol, zrx.tick_size, zrx.lot_size) == ("ZRX-USDT-PERP", 0.00001, 1.0)


def test_a_dated_future_record_is_named_by_its_delivery_day() -> None:
    record = {
        "symbol": "BTCUSDU23", "contractType": "InverseFutures", "status": "Trading",
        "baseCoin": "BTC", "quoteCoin": "USD", "deliveryTime": "1695974400000",
        "settleCoin": "BTC", "priceFilter": {"tickSize": "0.50"},
        "lotSizeFilter": {"qtyStep": "1"},
    }  # fmt: skip
    body = orjson.dumps({"retCode": 0, "result": {"category": "inverse", "list": [record]}})
    assert BYBIT.parse_instruments is not None
    (future,) = BYBIT.parse_instruments("https://api.bybit.com/x", body, 7)
    # 1695974400000 ms = 2023-09-29T08:00:00Z
    assert (future.symbol, future.kind, future.expiry) == (
        "BTC-USD-20230929", "inverse_future", 1695974400000 * 1_000_000,
    )  # fmt: skip
    options = orjson.dumps({"retCode": 0, "result": {"category": "inverse", "list": [
        {**record, "contractType": "Option"}]}})  # fmt: skip
    assert BYBIT.parse_instruments("https://api.bybit.com/x", options, 7) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"retCode":10001,"retMsg":"params error"}', "retCode 10001: 'params error'"),
        (b'{"retCode":0,"result":{"category":"option","list":[]}}', "category 'option'"),
        (b'{"retCode":0,"result":{"category":"spot","list":{}}}', "is not a list of objects"),
    ],
)
def test_a_malformed_answer_is_refused_naming_the_url(body: bytes, reason: str) -> None:
    assert BYBIT.parse_instruments is not None
    with pytest.raises(FrameError, match=f"^bybit: https://x: .*{reason}"):
        BYBIT.parse_instruments("https://x", body, 1)


def test_instrument_urls_list_every_category() -> None:
    assert BYBIT.instrument_urls is not None
    assert BYBIT.instrument_urls("https://api.bybit.com/") == [
        f"https://api.bybit.com/v5/market/instruments-info?category={c}&limit=1000"
        for c in ("spot", "linear", "inverse")
    ]


@pytest.mark.parametrize(
    ("symbol", "name"),
    [
        ("BTC-USDT", "BTCUSDT"),
        ("BTC-USDT-PERP", "BTCUSDT"),
        ("BTC-USDC-PERP", "BTCPERP"),
        ("BTC-USD-PERP", "BTCUSD"),
        ("BTC-USD-20230929", "BTCUSDU23"),
        ("ETH-USD-20240329", "ETHUSDH24"),
        ("BTC-USDC-20230929", "BTC-29SEP23"),
        ("BTC-USDT-20251226", "BTCUSDT-26DEC25"),
    ],
)
def test_native_names_follow_bybits_naming(symbol: str, name: str) -> None:
    assert native(symbol) == name


def test_inverse_symbols_get_their_own_endpoint_and_derivative_channels() -> None:
    assert BYBIT.split is not None
    configured = Subscription(
        ("BTC-USDT", "BTC-USD-PERP", "BTC-USDT-PERP", "BTC-USD-20230929"),
        ("trades", "quotes", "funding", "liquidations", "open_interest"),
    )
    spot, linear, inverse = BYBIT.split(configured)
    assert spot == Subscription(("BTC-USDT",), ("trades", "quotes"))
    assert linear == Subscription(("BTC-USDT-PERP",), configured.channels)
    assert inverse == Subscription(("BTC-USD-PERP", "BTC-USD-20230929"), configured.channels)
    assert BYBIT.connect_url(BASE, inverse) == f"{BASE}/inverse"
    assert BYBIT.connect_url(f"{BASE}/linear", inverse) == f"{BASE}/inverse"
    (message,) = BYBIT.subscribe_messages(inverse)
    # funding and open interest share the tickers topic: subscribed once
    assert orjson.loads(message)["args"] == [
        "publicTrade.BTCUSD", "orderbook.1.BTCUSD", "tickers.BTCUSD", "allLiquidation.BTCUSD",
        "publicTrade.BTCUSDU23", "orderbook.1.BTCUSDU23", "tickers.BTCUSDU23",
        "allLiquidation.BTCUSDU23",
    ]  # fmt: skip


def test_derivative_channels_on_spot_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="liquidations is offered for derivatives only"):
        BYBIT.subscribe_messages(Subscription(("BTC-USDT",), ("trades", "liquidations")))


def test_an_inverse_kline_volume_is_its_turnover_in_the_base_coin() -> None:
    """Inverse `volume` counts USD contracts; `turnover` is BTC (the real 2023-04-05 BTCUSD
    ticker: volume24h 661543991 USD / turnover24h 23389.1894 BTC = 28284, the price)."""
    assert BYBIT.mapper_for_recording is not None
    mapper = BYBIT.mapper_for_recording(f"{BASE}/inverse", captured())
    kline = {
        "start": 1680673800000, "end": 1680673859999, "interval": "1", "open": "28560.00",
        "close": "28560.50", "high": "28561.00", "low": "28559.50", "volume": "285605",
        "turnover": "10.0000", "confirm": False, "timestamp": 1680673823564,
    }  # fmt: skip
    frame = orjson.dumps({"topic": "kline.1.BTCUSD", "type": "snapshot", "ts": 1680673823566,
                          "data": [kline]})  # fmt: skip
    (candle,) = mapper(frame, 1680673823567 * 1_000_000)
    assert (candle.symbol, candle.volume) == ("BTC-USD-PERP", 10.0)  # type: ignore[union-attr]


LINEAR = "https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000"


def _page(cursor: object) -> bytes:
    result = {"category": "linear", "list": [], "nextPageCursor": cursor}
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": result})


def test_a_page_with_a_cursor_names_the_next_page() -> None:
    pager = BYBIT.next_instrument_page
    assert pager is not None
    # a URL-encoded cursor goes back as it came, not encoded twice
    second = pager(LINEAR, _page("1000%3A1700000000"))
    assert second == f"{LINEAR}&cursor=1000%3A1700000000"
    # the next cursor replaces the one asked with; what would break the query is escaped
    assert pager(second, _page("a b&c")) == f"{LINEAR}&cursor=a%20b%26c"


@pytest.mark.parametrize("cursor", ["", None])
def test_the_last_page_has_an_empty_cursor(cursor: object) -> None:
    assert BYBIT.next_instrument_page is not None
    assert BYBIT.next_instrument_page(LINEAR, _page(cursor)) is None
    body = orjson.dumps({"retCode": 0, "result": {"category": "linear", "list": []}})
    assert BYBIT.next_instrument_page(LINEAR, body) is None


def test_a_cursor_that_is_no_string_or_names_its_own_page_is_refused() -> None:
    pager = BYBIT.next_instrument_page
    assert pager is not None
    with pytest.raises(FrameError, match=f"^bybit: {re.escape(LINEAR)}: nextPageCursor 5 is not"):
        pager(LINEAR, _page(5))
    asked = f"{LINEAR}&cursor=abc"
    with pytest.raises(FrameError, match="nextPageCursor 'abc' names this page again"):
        pager(asked, _page("abc"))
