"""Binance spot and USD-M: real recorded frames, documented frame formats, malformed frames,
purity, and the subscribe / snapshot rules."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from marketstream.errors import ConfigError
from marketstream.schemas.records import Candle, Funding, Quote, Side, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, Mapper
from marketstream.venues.base.venue import Sequencing, SnapshotRequest, Subscription, Venue
from marketstream.venues.binance.mapper import BinanceMapper, native_symbol
from marketstream.venues.binance.venue import BINANCE, BINANCE_USDM
from tests.venues.binance.instruments import SPOT_INSTRUMENTS, USDM_INSTRUMENTS
from tests.venues.conftest import ReadRecording, Recorded, assert_valid

RECV = 1_700_000_000_123_456_789  # a receive time in ns, after every documented event time
MS = 1_000_000


def _frame(data: dict[str, Any], stream: str | None = None) -> str:
    """A documented payload, raw or in the combined-stream wrapper."""
    payload = data if stream is None else {"stream": stream, "data": data}
    return orjson.dumps(payload).decode()


def _map_one(mapper: Mapper, frame: str | bytes) -> Item:
    items = mapper(frame, RECV)
    assert len(items) == 1
    return items[0]


def _map_recording(exchange: Venue, rows: list[Recorded]) -> list[tuple[Recorded, Item]]:
    mapper = exchange.make_mapper((), SPOT_INSTRUMENTS + USDM_INSTRUMENTS)
    return [(row, item) for row in rows for item in mapper(row.frame, row.recv_ns)]


def _kinds(items: list[tuple[Recorded, Item]]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for _, item in items:
        kinds[type(item).__name__] += 1
        if isinstance(item, Candle) and item.closed:
            kinds["closed"] += 1
    return kinds


spot = BINANCE.make_mapper((), SPOT_INSTRUMENTS)
usdm = BINANCE_USDM.make_mapper((), USDM_INSTRUMENTS)


# --- real frames -----------------------------------------------------------------------------


def test_usdm_recording_maps_every_frame(read_recording: ReadRecording) -> None:
    mapped = _map_recording(BINANCE_USDM, read_recording("binance-usdm.jsonl"))
    assert _kinds(mapped) == {
        "Trade": 91,
        "Quote": 613,
        "Candle": 67,
        "closed": 4,
        "BookUpdate": 764,
    }
    for row, item in mapped:
        assert_valid(item, row.recv_ns)
    assert {item.symbol for _, item in mapped} == {
        "SUSHI-USDT-PERP",
        "AKRO-USDT-PERP",
        "KEEP-USDT-PERP",
        "CTK-USDT-PERP",
    }
    assert {item.exchange for _, item in mapped} == {"binance-usdm"}


def test_spot_recording_maps_every_frame(read_recording: ReadRecording) -> None:
    mapped = _map_recording(BINANCE, read_recording("binance-spot.jsonl"))
    assert _kinds(mapped) == {"Trade": 2, "Quote": 84, "Candle": 2, "BookUpdate": 177}
    for row, item in mapped:
        assert_valid(item, row.recv_ns)
    assert {item.symbol for _, item in mapped} == {"NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"}
    # Spot bookTicker carries no time: the receive time stands in.
    assert all(item.ts == row.recv_ns for row, item in mapped if isinstance(item, Quote))


def test_recorded_depth_updates_chain_by_the_exchange_sequencing(
    read_recording: ReadRecording,
) -> None:
    """Real deltas follow each other by the rule the exchange declares: the fields are wired."""
    for exchange, name in ((BINANCE, "binance-spot.jsonl"), (BINANCE_USDM, "binance-usdm.jsonl")):
        by_symbol: defaultdict[str, list[BookUpdate]] = defaultdict(list)
        for _, item in _map_recording(exchange, read_recording(name)):
            if isinstance(item, BookUpdate):
                by_symbol[item.symbol].append(item)
        links = 0
        for updates in by_symbol.values():
            for previous, update in itertools.pairwise(updates):
                assert previous.last_seq is not None
                if exchange.sequencing is Sequencing.PREV_LAST:
                    assert update.prev_seq == previous.last_seq
                else:
                    assert update.prev_seq is None
                    assert update.first_seq == previous.last_seq + 1
                links += 1
        assert links > 150


def test_first_recorded_usdm_frames_of_each_kind(read_recording: ReadRecording) -> None:
    mapped = _map_recording(BINANCE_USDM, read_recording("binance-usdm.jsonl"))
    first = {type(item): item for _, item in reversed(mapped)}
    assert first[Quote] == Quote(
        "binance-usdm",
        "SUSHI-USDT-PERP",
        1626992741012 * MS,  # T, the transaction time, not E
        1626992741062170112,
        7.611,
        2.0,
        7.612,
        297.0,
    )
    assert first[Trade] == Trade(
        "binance-usdm",
        "CTK-USDT-PERP",
        1626992741421 * MS,
        1626992742289739008,
        "16599292",
        1.011,
        10.0,
        "buy",
    )
    assert first[BookUpdate] == BookUpdate(
        "binance-usdm",
        "SUSHI-USDT-PERP",
        1626992741024 * MS,
        1626992741081671936,
        [(7.504, 813.0), (7.609, 0.0), (7.611, 2.0)],
        [(7.615, 1563.0), (7.622, 3284.0)],
        is_snapshot=False,
        first_seq=600859599090,
        last_seq=600859600917,
        prev_seq=600859598061,
    )


def test_first_closed_recorded_kline(read_recording: ReadRecording) -> None:
    mapped = _map_recording(BINANCE_USDM, read_recording("binance-usdm.jsonl"))
    closed = [item for _, item in mapped if isinstance(item, Candle) and item.closed]
    assert closed[0] == Candle(
        "binance-usdm", "SUSHI-USDT-PERP", "1m", 1626992700000 * MS,
        7.608, 7.618, 7.607, 7.617, 3005.0, 113, True,
    )  # fmt: skip


# --- documented frames -----------------------------------------------------------------------

AGG_TRADE = {
    "e": "aggTrade", "E": 1672515782136, "s": "BNBBTC", "a": 12345, "p": "0.001", "q": "100",
    "f": 100, "l": 105, "T": 1672515782134, "m": True, "M": True,
}  # fmt: skip
FUTURES_BOOK_TICKER = {
    "e": "bookTicker", "u": 400900217, "E": 1568014460893, "T": 1568014460891, "s": "BNBUSDT",
    "b": "25.35190000", "B": "31.21000000", "a": "25.36520000", "A": "40.66000000",
}  # fmt: skip
SPOT_BOOK_TICKER = {
    "u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
    "a": "25.36520000", "A": "40.66000000",
}  # fmt: skip
FUTURES_DEPTH = {
    "e": "depthUpdate", "E": 123456789, "T": 123456788, "s": "BTCUSDT", "U": 157, "u": 160,
    "pu": 149, "b": [["0.0024", "10"]], "a": [["0.0026", "100"], ["0.0027", "0"]],
}  # fmt: skip
MARK_PRICE = {
    "e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
    "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000,
}  # fmt: skip


def _kline(closed: bool) -> dict[str, Any]:
    return {
        "e": "kline", "E": 1672515782136, "s": "BNBBTC",
        "k": {
            "t": 1672515780000, "T": 1672515839999, "s": "BNBBTC", "i": "1m", "f": 100,
            "L": 200, "o": "0.0010", "c": "0.0020", "h": "0.0025", "l": "0.0015",
            "v": "1000", "n": 100, "x": closed, "q": "1.0000", "V": "500",
            "Q": "0.500", "B": "123456",
        },
    }  # fmt: skip


@pytest.mark.parametrize(("buyer_is_maker", "side"), [(True, "sell"), (False, "buy")])
def test_agg_trade_side_is_the_takers(buyer_is_maker: bool, side: Side) -> None:
    frame = _frame({**AGG_TRADE, "m": buyer_is_maker}, "bnbbtc@aggTrade")
    assert _map_one(spot, frame) == Trade(
        "binance", "BNB-BTC", 1672515782134 * MS, RECV, "12345", 0.001, 100.0, side
    )


def test_raw_trade_event() -> None:
    frame = _frame(
        {
            "e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345, "p": "0.001",
            "q": "100", "T": 1672515782136, "m": True, "M": True,
        }
    )  # fmt: skip
    assert _map_one(spot, frame) == Trade(
        "binance", "BNB-BTC", 1672515782136 * MS, RECV, "12345", 0.001, 100.0, "sell"
    )


def test_usdm_agg_trade_is_perpetual() -> None:
    frame = _frame({**AGG_TRADE, "s": "BTCUSDT"}, "btcusdt@aggTrade")
    trade = _map_one(usdm, frame)
    assert isinstance(trade, Trade)
    assert (trade.exchange, trade.symbol) == ("binance-usdm", "BTC-USDT-PERP")


@pytest.mark.parametrize("stream", [None, "bnbusdt@bookTicker"])
def test_spot_book_ticker_has_no_time_so_recv_ts_is_used(stream: str | None) -> None:
    assert _map_one(spot, _frame(SPOT_BOOK_TICKER, stream)) == Quote(
        "binance", "BNB-USDT", RECV, RECV, 25.3519, 31.21, 25.3652, 40.66
    )


def test_futures_book_ticker_uses_the_transaction_time() -> None:
    assert _map_one(usdm, _frame(FUTURES_BOOK_TICKER, "bnbusdt@bookTicker")) == Quote(
        "binance-usdm", "BNB-USDT-PERP", 1568014460891 * MS, RECV, 25.3519, 31.21, 25.3652, 40.66
    )


@pytest.mark.parametrize("closed", [True, False])
def test_kline(closed: bool) -> None:
    assert _map_one(spot, _frame(_kline(closed), "bnbbtc@kline_1m")) == Candle(
        "binance", "BNB-BTC", "1m", 1672515780000 * MS,
        0.001, 0.0025, 0.0015, 0.002, 1000.0, 100, closed,
    )  # fmt: skip


def test_futures_depth_update_links_to_the_previous_by_pu() -> None:
    assert _map_one(usdm, _frame(FUTURES_DEPTH, "btcusdt@depth@100ms")) == BookUpdate(
        "binance-usdm",
        "BTC-USDT-PERP",
        123456788 * MS,
        RECV,
        [(0.0024, 10.0)],
        [(0.0026, 100.0), (0.0027, 0.0)],
        is_snapshot=False,
        first_seq=157,
        last_seq=160,
        prev_seq=149,
    )


def test_spot_depth_update_has_event_time_and_no_prev_seq() -> None:
    data = {k: v for k, v in FUTURES_DEPTH.items() if k not in ("T", "pu")}
    update = _map_one(spot, _frame(data, "btcusdt@depth@100ms"))
    assert isinstance(update, BookUpdate)
    assert (update.ts, update.first_seq, update.last_seq, update.prev_seq) == (
        123456789 * MS,
        157,
        160,
        None,
    )


def test_mark_price_update_is_funding() -> None:
    assert _map_one(usdm, _frame(MARK_PRICE, "btcusdt@markPrice@1s")) == Funding(
        "binance-usdm",
        "BTC-USDT-PERP",
        1562305380000 * MS,
        0.00038167,
        11794.15,
        11784.62659091,
        1562306400000 * MS,
    )


def test_spot_has_no_funding_events() -> None:
    with pytest.raises(FrameError, match="binance: unknown event type 'markPriceUpdate'"):
        spot(_frame(MARK_PRICE), RECV)


@pytest.mark.parametrize(
    "reply", [{"result": None, "id": 1}, {"result": ["btcusdt@aggTrade"], "id": 3}]
)
def test_replies_to_requests_map_to_nothing(reply: dict[str, Any]) -> None:
    assert spot(_frame(reply), RECV) == []
    assert usdm(orjson.dumps(reply), RECV) == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            {"error": {"code": 2, "msg": "Invalid request: unknown variable"}, "id": 1},
            "binance: error 2: Invalid request: unknown variable",
        ),
        ({"code": -1121, "msg": "Invalid symbol."}, r"binance: error -1121: Invalid symbol\."),
    ],
)
def test_error_replies_raise_with_the_exchange_message(reply: dict[str, Any], message: str) -> None:
    with pytest.raises(FrameError, match=message):
        spot(_frame(reply), RECV)


# --- REST book snapshots ---------------------------------------------------------------------

SPOT_DEPTH_BODY = {
    "lastUpdateId": 1027024,
    "bids": [["4.00000000", "431.00000000"], ["3.90000000", "12.00000000"]],
    "asks": [["4.00000200", "12.00000000"]],
}


def test_spot_snapshot_without_time_uses_recv_ts() -> None:
    assert BINANCE.map_snapshot is not None
    assert BINANCE.map_snapshot(orjson.dumps(SPOT_DEPTH_BODY), "BNB-BTC", RECV) == BookUpdate(
        "binance",
        "BNB-BTC",
        RECV,
        RECV,
        [(4.0, 431.0), (3.9, 12.0)],
        [(4.000002, 12.0)],
        is_snapshot=True,
        last_seq=1027024,
    )


def test_futures_snapshot_uses_the_transaction_time() -> None:
    body = {**SPOT_DEPTH_BODY, "E": 1589436922972, "T": 1589436922959}
    assert BINANCE_USDM.map_snapshot is not None
    update = BINANCE_USDM.map_snapshot(orjson.dumps(body).decode(), "BNB-USDT-PERP", RECV)
    assert (update.ts, update.last_seq, update.is_snapshot) == (1589436922959 * MS, 1027024, True)


def test_snapshot_error_body_raises_with_the_exchange_message() -> None:
    assert BINANCE.map_snapshot is not None
    with pytest.raises(FrameError, match="binance: error -1121: Invalid symbol"):
        BINANCE.map_snapshot(b'{"code": -1121, "msg": "Invalid symbol."}', "BTC-USDT", RECV)


def test_snapshot_without_update_id_names_the_field() -> None:
    assert BINANCE.map_snapshot is not None
    body = {k: v for k, v in SPOT_DEPTH_BODY.items() if k != "lastUpdateId"}
    with pytest.raises(FrameError, match="depth snapshot: field 'lastUpdateId' is missing"):
        BINANCE.map_snapshot(orjson.dumps(body), "BTC-USDT", RECV)


# --- malformed frames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", "binance: not JSON: "),
        ("[1, 2]", "binance: expected a JSON object, got list"),
        (
            _frame({k: v for k, v in AGG_TRADE.items() if k != "p"}),
            "aggTrade: field 'p' is missing",
        ),
        (_frame({**AGG_TRADE, "p": "abc"}), "aggTrade: p 'abc' is not a decimal number"),
        (_frame({**AGG_TRADE, "p": None}), "aggTrade: p None is not a decimal number"),
        (_frame({**AGG_TRADE, "m": "yes"}), "aggTrade: m 'yes' is not true or false"),
        (
            _frame({**AGG_TRADE, "T": "soon"}),
            "aggTrade: T 'soon' is not an integer",
        ),
        (_frame({**AGG_TRADE, "e": "forceOrder"}), "binance: unknown event type 'forceOrder'"),
        (_frame({**AGG_TRADE, "e": ["aggTrade"]}), r"binance: unknown event type \['aggTrade'\]"),
        (
            _frame({**AGG_TRADE, "s": "NOTASYMBOL"}),
            "symbol 'NOTASYMBOL' is neither configured nor in binance's instrument list",
        ),
        (_frame({**AGG_TRADE, "s": 7}), "aggTrade: s 7 is not a string"),
        (
            _frame({"e": "kline", "E": 1, "s": "BNBBTC", "k": []}),
            "kline: k \\[\\] is not a JSON object",
        ),
        (
            _frame({**FUTURES_DEPTH, "b": [["1.0"]]}),
            r"depthUpdate: b\[0\] \['1.0'\] is not a list of the documented form",
        ),
        (
            _frame({"u": 1, "s": "BNBUSDT", "b": "1.0", "a": "2.0", "A": "1"}),
            "bookTicker: field 'B' is missing",
        ),
        (
            _frame({"lastUpdateId": 1, "bids": [], "asks": []}),
            "no event type 'e' in a frame with fields",
        ),
        (
            '{"stream": "x@aggTrade", "data": [1]}',
            "combined stream: data \\[1\\] is not a JSON object",
        ),
    ],
)
def test_malformed_frame_names_what_is_wrong(frame: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        spot(frame, RECV)


def test_missing_pu_on_futures_is_an_error() -> None:
    data = {k: v for k, v in FUTURES_DEPTH.items() if k != "pu"}
    with pytest.raises(FrameError, match="binance-usdm: depthUpdate: field 'pu' is missing"):
        usdm(_frame(data), RECV)


def test_a_quarterly_contract_is_named_by_its_delivery_day() -> None:
    """BTCUSDT_210924 (CURRENT_QUARTER, deliveryDate 1632470400000 = 2021-09-24 08:00 UTC in
    the real 2021-07 exchangeInfo) is BTC-USDT-20210924; sizes stay coins."""
    trade = _map_one(usdm, _frame({**AGG_TRADE, "s": "BTCUSDT_210924"}))
    assert isinstance(trade, Trade)
    assert (trade.symbol, trade.size) == ("BTC-USDT-20210924", 100.0)  # q "100"


def test_a_quarterly_contract_the_metadata_does_not_list_is_refused_by_name() -> None:
    frame = _frame({**AGG_TRADE, "s": "BTCUSDT_250328"})
    with pytest.raises(FrameError, match="'BTCUSDT_250328' is neither configured nor in"):
        usdm(frame, RECV)


def test_a_configured_quarterly_subscribes_by_its_exact_native_name() -> None:
    (message,) = BINANCE_USDM.subscribe_messages(Subscription(("BTC-USDT-20250328",), ("trades",)))
    assert orjson.loads(message)["params"] == ["btcusdt_250328@aggTrade"]


# --- symbols ---------------------------------------------------------------------------------


def _depth_url(native: str, usdm: bool = False) -> str:
    path = "fapi/v1" if usdm else "api/v3"
    return f"https://api.example/{path}/depth?symbol={native}&limit=1000"


@pytest.mark.parametrize(
    ("native", "usdm", "symbol"),
    [
        ("NKNUSDT", False, "NKN-USDT"),
        ("BLZETH", False, "BLZ-ETH"),
        ("RUNEEUR", False, "RUNE-EUR"),
        ("LRCBTC", False, "LRC-BTC"),
        ("ADAEUR", False, "ADA-EUR"),  # no quote list could tell ADA-EUR from AD-AEUR
        ("BTCBUSD", False, "BTC-BUSD"),
        ("1000SHIBUSDT", True, "1000SHIB-USDT-PERP"),
        ("BTCUSDT_210924", True, "BTC-USDT-20210924"),
    ],
)
def test_native_symbols_are_named_by_the_instrument_list(
    native: str, usdm: bool, symbol: str
) -> None:
    exchange, instruments = (
        (BINANCE_USDM, USDM_INSTRUMENTS) if usdm else (BINANCE, SPOT_INSTRUMENTS)
    )
    assert exchange.snapshot_symbol is not None
    assert exchange.snapshot_symbol(_depth_url(native, usdm), instruments) == symbol


@pytest.mark.parametrize("native", ["USDT", "BTCXYZ", "btcusdt", "NKNUSDT"])
def test_a_native_symbol_neither_listed_nor_configured_is_named(native: str) -> None:
    assert BINANCE.snapshot_symbol is not None
    with pytest.raises(FrameError, match=f"asks for '{native}', which is neither configured nor"):
        BINANCE.snapshot_symbol(_depth_url(native), USDM_INSTRUMENTS, ["BTC-USDT"])


def test_native_symbol() -> None:
    assert native_symbol("BTC-USDT") == "BTCUSDT"
    assert native_symbol("BTC-USDT-PERP") == "BTCUSDT"


def test_configured_symbols_map_exactly_even_when_no_split_would_find_them() -> None:
    frame = _frame({**AGG_TRADE, "s": "FOOXYZ"})
    with pytest.raises(FrameError, match="'FOOXYZ'"):
        spot(frame, RECV)
    trade = _map_one(BINANCE.make_mapper(["FOO-XYZ"]), frame)
    assert isinstance(trade, Trade)
    assert trade.symbol == "FOO-XYZ"


@pytest.mark.parametrize(
    ("exchange", "symbol"), [(BINANCE, "BTC-USDT-PERP"), (BINANCE_USDM, "BTC-USDT")]
)
def test_symbols_of_the_other_market_are_a_config_error(exchange: Venue, symbol: str) -> None:
    with pytest.raises(ConfigError, match=f"{exchange.name}: symbol '{symbol}' is not listed"):
        exchange.make_mapper([symbol])


# --- purity ----------------------------------------------------------------------------------


def test_mapping_is_pure() -> None:
    mapper = BINANCE_USDM.make_mapper(["BTC-USDT-PERP"], USDM_INSTRUMENTS)
    depth = _frame(FUTURES_DEPTH, "btcusdt@depth@100ms")
    first = mapper(depth, RECV)
    mapper(_frame(MARK_PRICE), RECV + 1)
    mapper(_frame({**FUTURES_DEPTH, "U": 161, "u": 170, "pu": 160}), RECV + 2)
    with pytest.raises(FrameError):
        mapper("{", RECV)
    assert mapper(depth, RECV) == first
    assert first is not mapper(depth, RECV)  # fresh items: callers may keep or change them


def test_mapper_holds_only_read_only_data() -> None:
    mapper = BINANCE.make_mapper(["BTC-USDT"])
    assert isinstance(mapper, BinanceMapper)
    assert not hasattr(mapper, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mapper.listed = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        mapper.listed["ETHUSDT"] = mapper.listed["BTCUSDT"]  # type: ignore[index]


# --- exchange rules --------------------------------------------------------------------------

TWO_SYMBOLS_SPOT = Subscription(("BTC-USDT", "ETH-USDT"), ("trades", "quotes", "candles", "books"))
TWO_SYMBOLS_USDM = Subscription(
    ("BTC-USDT-PERP", "ETH-USDT-PERP"), ("trades", "quotes", "candles", "books", "funding")
)


def test_spot_subscribe_messages_and_url() -> None:
    assert BINANCE.connect_url("wss://stream.binance.com:9443/stream", TWO_SYMBOLS_SPOT) == (
        "wss://stream.binance.com:9443/stream"
    )
    messages = BINANCE.subscribe_messages(TWO_SYMBOLS_SPOT)
    assert [orjson.loads(m) for m in messages] == [
        {
            "method": "SUBSCRIBE",
            "params": [
                "btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@kline_1m",
                "btcusdt@depth@100ms", "ethusdt@aggTrade", "ethusdt@bookTicker",
                "ethusdt@kline_1m", "ethusdt@depth@100ms",
            ],
            "id": 1,
        }
    ]  # fmt: skip


def test_usdm_subscribe_messages_include_mark_price() -> None:
    (message,) = BINANCE_USDM.subscribe_messages(TWO_SYMBOLS_USDM)
    assert orjson.loads(message)["params"] == [
        "btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@kline_1m", "btcusdt@depth@100ms",
        "btcusdt@markPrice@1s", "ethusdt@aggTrade", "ethusdt@bookTicker", "ethusdt@kline_1m",
        "ethusdt@depth@100ms", "ethusdt@markPrice@1s",
    ]  # fmt: skip


def test_subscribe_messages_are_chunked_by_100_streams() -> None:
    symbols = tuple(f"C{n}-USDT" for n in range(70))
    messages = [
        orjson.loads(m)
        for m in BINANCE.subscribe_messages(Subscription(symbols, ("trades", "quotes", "books")))
    ]
    assert [len(m["params"]) for m in messages] == [100, 100, 10]
    assert [m["id"] for m in messages] == [1, 2, 3]
    streams = [s for m in messages for s in m["params"]]
    assert len(set(streams)) == 210
    assert streams[100] == "c33usdt@bookTicker"


def test_funding_is_not_offered_on_spot() -> None:
    with pytest.raises(ConfigError, match="binance: channel 'funding' is not offered"):
        BINANCE.subscribe_messages(Subscription(("BTC-USDT",), ("funding",)))


def test_snapshot_requests() -> None:
    assert BINANCE.snapshot_requests is not None
    assert BINANCE_USDM.snapshot_requests is not None
    spot_base = "https://api.binance.com"
    usdm_base = "https://fapi.binance.com"
    assert BINANCE.snapshot_requests(f"{spot_base}/", ["BTC-USDT", "ETH-USDT"]) == [
        SnapshotRequest("BTC-USDT", f"{spot_base}/api/v3/depth?symbol=BTCUSDT&limit=1000"),
        SnapshotRequest("ETH-USDT", f"{spot_base}/api/v3/depth?symbol=ETHUSDT&limit=1000"),
    ]
    assert BINANCE_USDM.snapshot_requests(usdm_base, ["BTC-USDT-PERP", "ETH-USDT-PERP"]) == [
        SnapshotRequest("BTC-USDT-PERP", f"{usdm_base}/fapi/v1/depth?symbol=BTCUSDT&limit=1000"),
        SnapshotRequest("ETH-USDT-PERP", f"{usdm_base}/fapi/v1/depth?symbol=ETHUSDT&limit=1000"),
    ]


@pytest.mark.parametrize(
    ("exchange", "symbols"),
    [(BINANCE, ["BTC-USDT", "LRC-BTC"]), (BINANCE_USDM, ["BTC-USDT-PERP", "1000PEPE-USDC-PERP"])],
)
def test_snapshot_urls_name_their_symbol(exchange: Venue, symbols: list[str]) -> None:
    """Recorded snapshots are normalized offline by the symbol in their URL."""
    assert exchange.snapshot_requests is not None
    assert exchange.snapshot_symbol is not None
    requests = exchange.snapshot_requests("https://api.example", symbols)
    assert [exchange.snapshot_symbol(request.url, (), symbols) for request in requests] == symbols
    with pytest.raises(FrameError, match="snapshot URL 'https://x/depth' has no symbol"):
        exchange.snapshot_symbol("https://x/depth", (), symbols)


def test_limits_and_sequencing() -> None:
    assert (BINANCE.name, BINANCE_USDM.name) == ("binance", "binance-usdm")
    assert (BINANCE.sequencing, BINANCE_USDM.sequencing) == (
        Sequencing.FIRST_LAST,
        Sequencing.PREV_LAST,
    )
    assert (BINANCE.max_messages_per_s, BINANCE_USDM.max_messages_per_s) == (5, 10)
    assert (BINANCE.max_streams_per_connection, BINANCE_USDM.max_streams_per_connection) == (
        1024,
        200,
    )
    assert BINANCE.ping_message is None
    assert BINANCE_USDM.ping_message is None
    assert BINANCE.channels == {"trades", "quotes", "candles", "books"}
    assert BINANCE_USDM.channels == {
        "trades", "quotes", "candles", "books", "funding", "liquidations", "open_interest"
    }  # fmt: skip
