"""OKX v5: documented frame formats, control and malformed frames, the book checksum and how
the book keeper uses it, REST book snapshots and how updates join them, and the subscribe /
endpoint rules."""

from __future__ import annotations

import binascii
import io
import random
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from marketstream.config import load_config
from marketstream.errors import ConfigError
from marketstream.ingest.books import BookKeeper
from marketstream.ingest.normalize import normalize_recording
from marketstream.ingest.processor import FrameProcessor, Processed
from marketstream.ingest.service import plan_connections
from marketstream.replay.recording_format import RecordedFrame
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item
from marketstream.venues.base.venue import Sequencing, Subscription
from marketstream.venues.okx.checksum import checksum
from marketstream.venues.okx.feed import connect_url, resubscribe_book, split, subscribe_messages
from marketstream.venues.okx.rest import map_snapshot, snapshot_requests, snapshot_symbol
from marketstream.venues.okx.sessions import okx_session
from marketstream.venues.okx.symbols import native_symbol, normalized_symbol
from marketstream.venues.okx.venue import OKX
from marketstream.venues.registry import get_venue
from tests.venues.okx.captures import okx_instruments

SHIPPED_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "pipeline.yaml"
RECV = 1_700_000_000_123_456_789  # a receive time in ns, after every documented event time
MS = 1_000_000

# With the instruments OKX listed in May 2022 (real REST capture): swaps map in base units.
okx = OKX.make_mapper((), okx_instruments())


def _push(channel: str, inst_id: str, data: list[Any], **extra: object) -> str:
    return orjson.dumps(
        {"arg": {"channel": channel, "instId": inst_id}, **extra, "data": data}
    ).decode()


def _map_one(frame: str | bytes) -> Item:
    items = okx(frame, RECV)
    assert len(items) == 1
    return items[0]


# --- documented frames -----------------------------------------------------------------------

TRADE = {
    "instId": "BTC-USDT", "tradeId": "130639474", "px": "42219.9", "sz": "0.12060306",
    "side": "buy", "ts": "1630048897897", "count": "3",
}  # fmt: skip
TICKER = {
    "instType": "SPOT", "instId": "BTC-USDT", "last": "9999.99", "lastSz": "0.1",
    "askPx": "9999.99", "askSz": "11", "bidPx": "8888.88", "bidSz": "5", "open24h": "9000",
    "high24h": "10000", "low24h": "8888.88", "volCcy24h": "2222", "vol24h": "2222",
    "sodUtc0": "2222", "sodUtc8": "2222", "ts": "1597026383085",
}  # fmt: skip
FUNDING = {
    "fundingRate": "0.0001875391284828", "fundingTime": "1700726400000",
    "instId": "BTC-USD-SWAP", "instType": "SWAP", "method": "current_period",
    "maxFundingRate": "0.00375", "minFundingRate": "-0.00375", "nextFundingRate": "",
    "nextFundingTime": "1700755200000", "premium": "0.0001233824646391",
    "settFundingRate": "0.0001699799259033", "settState": "settled", "ts": "1700724675402",
}  # fmt: skip
CANDLE = ["1597026383085", "8533.02", "8553.74", "8527.17", "8548.26", "45247", "529.5858061",
          "5.21", "0"]  # fmt: skip
BOOK_SNAPSHOT = {
    "asks": [["8476.98", "415", "0", "13"], ["8477", "7", "0", "2"]],
    "bids": [["8476.97", "256", "0", "12"], ["8475.55", "101.00", "0", "1"]],
    "ts": "1597026383085", "checksum": 717541385, "prevSeqId": -1, "seqId": 123456,
}  # fmt: skip


def test_trades_side_is_the_takers() -> None:
    sell = {**TRADE, "tradeId": "130639475", "side": "sell"}
    ts = 1630048897897 * MS
    assert okx(_push("trades", "BTC-USDT", [TRADE, sell]), RECV) == [
        Trade("okx", "BTC-USDT", ts, RECV, "130639474", 42219.9, 0.12060306, "buy"),
        Trade("okx", "BTC-USDT", ts, RECV, "130639475", 42219.9, 0.12060306, "sell"),
    ]


def test_tickers_are_quotes_with_the_last_price() -> None:
    assert _map_one(_push("tickers", "BTC-USDT", [TICKER])) == Quote(
        "okx", "BTC-USDT", 1597026383085 * MS, RECV, 8888.88, 5.0, 9999.99, 11.0, 9999.99
    )


@pytest.mark.parametrize(
    ("inst_id", "symbol", "size"),
    [
        # linear: contracts x ctVal 0.01 BTC
        ("BTC-USDT-SWAP", "BTC-USDT-PERP", 0.12060306 * 0.01),
        # inverse: contracts x ctVal 100 USD / price
        ("BTC-USD-SWAP", "BTC-USD-PERP", 0.12060306 * 100 / 42219.9),
    ],
)
def test_swaps_are_perpetuals_linear_and_inverse(inst_id: str, symbol: str, size: float) -> None:
    trade = _map_one(_push("trades", inst_id, [{**TRADE, "instId": inst_id}]))
    assert isinstance(trade, Trade)
    assert trade.symbol == symbol
    assert trade.size == pytest.approx(size, rel=1e-12)


def test_a_swap_without_instrument_metadata_is_refused_not_guessed() -> None:
    frame = _push("trades", "BTC-USDT-SWAP", [{**TRADE, "instId": "BTC-USDT-SWAP"}])
    with pytest.raises(FrameError, match="BTC-USDT-PERP: no instrument metadata"):
        OKX.make_mapper(())(frame, RECV)
    # spot needs none: its sizes are coins
    assert OKX.make_mapper(())(_push("trades", "BTC-USDT", [TRADE]), RECV) == okx(
        _push("trades", "BTC-USDT", [TRADE]), RECV
    )


@pytest.mark.parametrize(("confirm", "closed"), [("1", True), ("0", False)])
def test_candle1m(confirm: str, closed: bool) -> None:
    row = [*CANDLE[:8], confirm]
    assert _map_one(_push("candle1m", "BTC-USDT", [row])) == Candle(
        "okx", "BTC-USDT", "1m", 1597026383085 * MS,
        8533.02, 8553.74, 8527.17, 8548.26, 45247.0, None, closed,
    )  # fmt: skip


def test_candle_of_a_capture_without_confirm_reads_as_open() -> None:
    candle = _map_one(_push("candle1m", "BTC-USDT", [CANDLE[:7]]))
    assert isinstance(candle, Candle)
    assert not candle.closed


def test_funding_rate_has_no_mark_or_index_price() -> None:
    """`fundingTime` is the settlement the current rate is charged at: `next_ts`."""
    assert _map_one(_push("funding-rate", "BTC-USD-SWAP", [FUNDING])) == Funding(
        "okx", "BTC-USD-PERP", 1700724675402 * MS, 0.0001875391284828, None, None,
        1700726400000 * MS,
    )  # fmt: skip


def test_funding_rate_without_ts_takes_the_receive_time_not_the_funding_time() -> None:
    data = {k: v for k, v in FUNDING.items() if k != "ts"} | {"nextFundingTime": ""}
    funding = _map_one(_push("funding-rate", "BTC-USD-SWAP", [data]))
    assert isinstance(funding, Funding)
    assert (funding.ts, funding.next_ts) == (RECV, 1700726400000 * MS)


@pytest.mark.parametrize("rate", [None, ""])
def test_funding_push_without_a_current_rate_is_skipped(rate: str | None) -> None:
    """Only `nextFundingRate` (or `fundingRate` empty): no record and no error, as on Bybit."""
    data = {k: v for k, v in FUNDING.items() if k != "fundingRate"}
    if rate is not None:
        data["fundingRate"] = rate
    assert okx(_push("funding-rate", "BTC-USD-SWAP", [data]), RECV) == []


def test_books_snapshot_keeps_the_exact_level_text() -> None:
    frame = _push("books", "BTC-USDT", [BOOK_SNAPSHOT], action="snapshot")
    assert _map_one(frame) == BookUpdate(
        "okx",
        "BTC-USDT",
        1597026383085 * MS,
        RECV,
        [(8476.97, 256.0), (8475.55, 101.0)],
        [(8476.98, 415.0), (8477.0, 7.0)],
        is_snapshot=True,
        last_seq=123456,
        prev_seq=-1,
        checksum=717541385,
        bid_texts=[("8476.97", "256"), ("8475.55", "101.00")],
        ask_texts=[("8476.98", "415"), ("8477", "7")],
    )


def test_books_update_links_to_the_previous_by_prev_seq_id() -> None:
    data = {
        **BOOK_SNAPSHOT,
        "asks": [["8477", "0", "0", "0"]],
        "bids": [],
        "prevSeqId": 123456,
        "seqId": 123457,
    }
    update = _map_one(_push("books", "BTC-USDT-SWAP", [data], action="update"))
    assert isinstance(update, BookUpdate)
    assert (update.symbol, update.is_snapshot, update.prev_seq, update.last_seq) == (
        "BTC-USDT-PERP",
        False,
        123456,
        123457,
    )
    assert update.first_seq == 123457  # prevSeqId + 1: the first id the update covers
    assert (update.asks, update.ask_texts, update.bids) == ([(8477.0, 0.0)], [("8477", "0")], [])


@pytest.mark.parametrize("crc", [0, None])
def test_a_retired_checksum_is_not_verified(crc: int | None) -> None:
    """OKX retires the field: it is sent as 0, or left out."""
    data = {k: v for k, v in BOOK_SNAPSHOT.items() if k != "checksum"}
    if crc is not None:
        data["checksum"] = crc
    update = _map_one(_push("books", "BTC-USDT", [data], action="snapshot"))
    assert isinstance(update, BookUpdate)
    assert update.checksum is None


def test_a_capture_without_sequence_ids_maps_with_none() -> None:
    data = {k: v for k, v in BOOK_SNAPSHOT.items() if k not in ("seqId", "prevSeqId")}
    update = _map_one(_push("books-l2-tbt", "BTC-USDT", [data], action="update"))
    assert isinstance(update, BookUpdate)
    assert (update.last_seq, update.prev_seq, update.is_snapshot) == (None, None, False)


def test_books5_push_is_a_whole_book() -> None:
    data = {
        "asks": BOOK_SNAPSHOT["asks"],
        "bids": BOOK_SNAPSHOT["bids"],
        "instId": "BTC-USDT",
        "ts": "1597026383085",
        "seqId": 123456,
    }
    update = _map_one(_push("books5", "BTC-USDT", [data]))
    assert isinstance(update, BookUpdate)
    assert (update.is_snapshot, update.last_seq, update.checksum) == (True, 123456, None)


@pytest.mark.parametrize(
    "frame",
    [
        "pong",
        b"pong",
        '{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
        '{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
        '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a '
        'service upgrade. Please reconnect.","connId":"a4d3ae55"}',
        '{"event":"channel-conn-count","channel":"books","connCount":"2","connId":"a4d3ae55"}',
    ],
)
def test_control_frames_map_to_nothing(frame: str | bytes) -> None:
    assert okx(frame, RECV) == []


# --- symbols ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inst_id", "symbol"),
    [("BTC-USDT", "BTC-USDT"), ("BTC-USDT-SWAP", "BTC-USDT-PERP"), ("BTC-USD-SWAP", "BTC-USD-PERP"),
     ("1INCH-USDT", "1INCH-USDT")],
)  # fmt: skip
def test_instrument_ids_and_symbols_map_both_ways(inst_id: str, symbol: str) -> None:
    assert normalized_symbol(inst_id) == symbol
    assert native_symbol(symbol) == inst_id


def test_dated_futures_map_both_ways_by_their_expiry_day() -> None:
    assert normalized_symbol("BTC-USD-250328") == "BTC-USD-20250328"
    assert native_symbol("BTC-USD-20250328") == "BTC-USD-250328"


def test_a_dated_future_without_metadata_is_refused_with_the_reason() -> None:
    """Not in the May 2022 instrument list: its contract size is unknown, so no size."""
    frame = _push("trades", "BTC-USD-250328", [{**TRADE, "instId": "BTC-USD-250328"}])
    with pytest.raises(FrameError, match="okx: BTC-USD-20250328: no instrument metadata"):
        okx(frame, RECV)


@pytest.mark.parametrize("inst_id", ["BTC-USD-220325-40000-C", "BTC"])
def test_options_are_not_supported(inst_id: str) -> None:
    with pytest.raises(FrameError, match=f"okx: instId '{inst_id}' is not supported"):
        okx(_push("trades", inst_id, [{**TRADE, "instId": inst_id}]), RECV)


def test_an_instrument_id_that_is_no_symbol_is_named() -> None:
    with pytest.raises(FrameError, match="instId 'btc-usdt' is not an OKX spot, swap or future"):
        okx(_push("trades", "btc-usdt", [TRADE]), RECV)


# --- malformed frames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", "okx: not JSON: "),
        ("[1, 2]", "okx: expected a JSON object, got list"),
        ('{"data": []}', "okx: push: field 'arg' is missing"),
        (_push("bogus", "BTC-USDT", []), "okx: unknown channel 'bogus'"),
        (_push("candle1H", "BTC-USDT", []), "okx: unknown channel 'candle1H'"),
        ('{"arg":{"channel":"trades"},"data":[]}', "arg: field 'instId' is missing"),
        ('{"arg":{"channel":"trades","instId":"BTC-USDT"}}', "trades: field 'data' is missing"),
        (_push("trades", "BTC-USDT", [1]), "trades: data item 1 is not a JSON object"),
        (
            _push("trades", "BTC-USDT", [{**TRADE, "px": "abc"}]),
            "trades: px 'abc' is not a decimal",
        ),
        (_push("trades", "BTC-USDT", [{**TRADE, "side": "up"}]), "trades: side 'up' is not 'buy'"),
        (
            _push("trades", "BTC-USDT", [{**TRADE, "tradeId": 9}]),
            "trades: tradeId 9 is not a string",
        ),
        (_push("trades", "BTC-USDT", [{**TRADE, "ts": "1.5"}]), "trades: ts '1.5' is not a time"),
        (_push("tickers", "BTC-USDT", [{**TICKER, "bidPx": ""}]), "tickers: bidPx '' is not a dec"),
        (_push("candle1m", "BTC-USDT", [CANDLE[:5]]), "candle1m: .* is not a list \\[ts, open"),
        (_push("candle1m", "BTC-USDT", [[*CANDLE[:2], "x", *CANDLE[3:]]]), "high 'x' is not a dec"),
        (_push("books", "BTC-USDT", [BOOK_SNAPSHOT]), "books: action None is not 'snapshot'"),
        (
            _push("books", "BTC-USDT", [{**BOOK_SNAPSHOT, "bids": [["1", 2]]}], action="update"),
            r"books: bids \[\['1', 2\]\] is not a list of \[price, size, ...\] decimal strings",
        ),
        (
            _push("books", "BTC-USDT", [{**BOOK_SNAPSHOT, "seqId": "7"}], action="update"),
            "books: seqId '7' is not an integer",
        ),
        (
            _push("books", "BTC-USDT", [{**BOOK_SNAPSHOT, "checksum": "1"}], action="update"),
            "books: checksum '1' is not an integer",
        ),
        ('{"event":"error","code":"60012","msg":"Invalid request"}', "okx: error 60012: Invalid"),
        ('{"event":"login","code":"0"}', "okx: unknown event 'login'"),
    ],
)
def test_malformed_frame_names_what_is_wrong(frame: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        okx(frame, RECV)


OPEN_INTEREST = {
    "instId": "BTC-USDT-SWAP", "instType": "SWAP", "oi": "2216113.01", "oiCcy": "22161.1301",
    "oiUsd": "1370050000", "ts": "1700724675402",
}  # fmt: skip
LIQUIDATED = {"bkLoss": "0", "bkPx": "0.007831", "ccy": "", "posSide": "short", "side": "buy",
              "sz": "13", "ts": "1692266434010"}  # fmt: skip


def _liquidations(**changes: object) -> str:
    item = {"details": [{**LIQUIDATED, **changes}], "instId": "BTC-USDT-SWAP", "instType": "SWAP"}
    push = {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [item]}
    return orjson.dumps(push).decode()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            _push(
                "books", "BTC-USDT", [{**BOOK_SNAPSHOT, "asks": [["abc", "1"]]}], action="update"
            ),
            r"^okx: books: asks \[\['abc', '1'\]\] is not a list of \[price, size, ...\] decimal",
        ),
        (
            _push("books5", "BTC-USDT", [{**BOOK_SNAPSHOT, "bids": [["1"]]}]),
            r"^okx: books5: bids \[\['1'\]\] is not a list of \[price, size, ...\] decimal",
        ),
        (
            _push("books", "BTC-USDT", [{**BOOK_SNAPSHOT, "ts": "1.5"}], action="snapshot"),
            "^okx: books: ts '1.5' is not a time in milliseconds",
        ),
        (
            _push("books", "BTC-USDT", [{**BOOK_SNAPSHOT, "prevSeqId": True}], action="update"),
            "^okx: books: prevSeqId True is not an integer",
        ),
        (
            _push("candle1m", "BTC-USDT", [[*CANDLE[:4], 8548.26, *CANDLE[5:]]]),
            "^okx: candle1m: close 8548.26 is not a decimal number",
        ),
        (
            _push("candle1m", "BTC-USDT", [["soon", *CANDLE[1:]]]),
            "^okx: candle1m: ts 'soon' is not a time in milliseconds",
        ),
        (
            _push("funding-rate", "BTC-USD-SWAP", [{**FUNDING, "fundingTime": "soon"}]),
            "^okx: funding-rate: fundingTime 'soon' is not a time in milliseconds",
        ),
        (
            _push("funding-rate", "BTC-USD-SWAP", [{**FUNDING, "fundingRate": "high"}]),
            "^okx: funding-rate: fundingRate 'high' is not a decimal number",
        ),
        (
            _push("open-interest", "BTC-USDT-SWAP", [{**OPEN_INTEREST, "oi": None}]),
            "^okx: open-interest: oi None is not a decimal number",
        ),
        (
            _push("open-interest", "BTC-USDT-SWAP", [{**OPEN_INTEREST, "ts": 1.5}]),
            "^okx: open-interest: ts 1.5 is not a time in milliseconds",
        ),
        (_liquidations(side="up"), "^okx: liquidation-orders: side 'up' is not 'buy' or 'sell'"),
        (_liquidations(bkPx="x"), "^okx: liquidation-orders: bkPx 'x' is not a decimal number"),
        (
            '{"arg":{"channel":"books"},"action":"snapshot","data":[]}',
            "^okx: arg: field 'instId' is missing",
        ),
    ],
)
def test_a_push_its_struct_refuses_is_explained_field_by_field(frame: str, message: str) -> None:
    """Pushes decode into their channel's Structs first; one whose field has the wrong type is
    read again as JSON, which names the field, its value and what was expected."""
    with pytest.raises(FrameError, match=message):
        okx(frame, RECV)


def test_liquidations_and_open_interest_map_as_the_json_path_does() -> None:
    """BTC-USDT-SWAP: 13 contracts x ctVal 0.01; open interest in coins as sent."""
    [liquidation] = okx(_liquidations(), RECV)
    assert liquidation == Liquidation(
        "okx", "BTC-USDT-PERP", 1692266434010 * MS, RECV, "buy", 0.007831, 0.13
    )
    assert okx(_push("open-interest", "BTC-USDT-SWAP", [OPEN_INTEREST]), RECV) == [
        OpenInterest("okx", "BTC-USDT-PERP", 1700724675402 * MS, RECV, 22161.1301, 1370050000.0)
    ]


def test_the_mapper_is_pure() -> None:
    frame = _push("books", "BTC-USDT", [BOOK_SNAPSHOT], action="snapshot")
    assert okx(frame, RECV) == okx(frame, RECV) == OKX.make_mapper(["BTC-USDT"])(frame, RECV)


# --- the checksum ----------------------------------------------------------------------------


def reference_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Straight from OKX's description: bid1:ask1:bid2:ask2..., top 25, CRC32 as int32."""
    fields: list[str] = []
    for i in range(25):
        if i < len(bids):
            fields.append(bids[i][0] + ":" + bids[i][1])
        if i < len(asks):
            fields.append(asks[i][0] + ":" + asks[i][1])
    unsigned = binascii.crc32(":".join(fields).encode("utf-8"))
    signed: int = struct.unpack("<i", struct.pack("<I", unsigned))[0]
    return signed


def test_checksum_matches_the_documented_examples() -> None:
    """OKX's examples: both sides deep enough, and one side running out."""
    assert checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")]) == (
        -1881014294
    )
    assert checksum([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]) == (
        831078360
    )


def test_checksum_agrees_with_a_straightforward_implementation() -> None:
    rng = random.Random(4)
    for _ in range(200):
        bids = [
            (f"{100 - i * 0.5:.1f}", f"{rng.uniform(0, 9):.{rng.randint(0, 8)}f}")
            for i in range(rng.randint(0, 40))
        ]
        asks = [
            (f"{101 + i}", f"{rng.randint(1, 999)}.{'0' * rng.randint(0, 3)}1")
            for i in range(rng.randint(0, 40))
        ]
        assert checksum(bids, asks) == reference_checksum(bids, asks)
        assert -(2**31) <= checksum(bids, asks) < 2**31


# --- the book keeper with OKX's rules --------------------------------------------------------


class ExchangeBook:
    """What OKX's side of a book looks like: levels by exact price text, its checksum."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def change(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size

    def best_first(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda level: -Decimal(level[0]))
        asks = sorted(self.asks.items(), key=lambda level: Decimal(level[0]))
        return bids, asks

    def checksum(self) -> int:
        return reference_checksum(*self.best_first())


def book_frame(
    action: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    *,
    seq: int,
    prev: int,
    crc: int,
    ts_ms: int = 1_700_000_000_000,
) -> str:
    data = {
        "asks": [[p, s, "0", "1"] for p, s in asks],
        "bids": [[p, s, "0", "1"] for p, s in bids],
        "ts": str(ts_ms),
        "checksum": crc,
        "prevSeqId": prev,
        "seqId": seq,
    }
    return _push("books", "BTC-USDT", [data], action=action)


def processor() -> FrameProcessor:
    books = BookKeeper(OKX.name, OKX.book_rules, depth=5, interval_ns=1)
    return FrameProcessor(
        OKX.make_mapper(["BTC-USDT"]), books, max_future_skew_ns=10**18, known_symbols={"BTC-USDT"}
    )


def random_changes(rng: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Changes near the top of the book: inserts, size changes (text varies), removals."""
    bids = [
        (f"{rng.randint(950, 999) / 10:.1f}", rng.choice(["0", "1.5", "1.50", "2", "0.00100"]))
        for _ in range(rng.randint(0, 4))
    ]
    asks = [
        (f"{rng.randint(1001, 1050) / 10:.1f}", rng.choice(["0", "3", "3.0", "0.25"]))
        for _ in range(rng.randint(0, 4))
    ]
    return list(dict(bids).items()), list(dict(asks).items())


def snapshot(exchange: ExchangeBook, proc: FrameProcessor, seq: int) -> Processed:
    bids, asks = exchange.best_first()
    return proc.process(
        book_frame("snapshot", bids, asks, seq=seq, prev=-1, crc=exchange.checksum()), RECV
    )


def test_the_keeper_verifies_the_checksum_of_a_snapshot_and_every_update() -> None:
    rng = random.Random(7)
    exchange = ExchangeBook()
    exchange.change(
        [(f"{90 + i * 0.5:.1f}", f"{i + 1}.0") for i in range(30)],  # deeper than 25 levels
        [(f"{101 + i * 0.5:.1f}", "1") for i in range(12)],  # asks run out before 25
    )
    proc = processor()
    verified = snapshot(exchange, proc, seq=1000).checksums_verified
    seq = 1000
    for _ in range(300):
        bids, asks = random_changes(rng)
        exchange.change(bids, asks)
        seq, prev = seq + rng.randint(1, 3), seq  # seqIds need not be consecutive
        out = proc.process(
            book_frame("update", bids, asks, seq=seq, prev=prev, crc=exchange.checksum()), RECV
        )
        assert (out.gaps, out.checksum_failures, out.rejected) == ((), (), ())
        verified += out.checksums_verified
    assert verified == 301
    book = proc.books.book("BTC-USDT")
    assert book.last_seq == seq
    top = book.top(RECV, RECV)
    best_bids, best_asks = exchange.best_first()
    assert top.bids == [(float(p), float(s)) for p, s in best_bids[:5]]
    assert top.asks == [(float(p), float(s)) for p, s in best_asks[:5]]


def test_an_update_with_seq_id_equal_to_prev_seq_id_is_a_heartbeat() -> None:
    """OKX sends seqId == prevSeqId when the book did not change for a while."""
    exchange = ExchangeBook()
    exchange.change([("100.0", "1")], [("101.0", "2")])
    proc = processor()
    snapshot(exchange, proc, seq=50)
    crc = exchange.checksum()
    for _ in range(2):  # right after the snapshot, and again later
        out = proc.process(book_frame("update", [], [], seq=50, prev=50, crc=crc), RECV)
        assert (out.gaps, out.checksum_failures, out.snapshots_needed) == ((), (), ())
    exchange.change([("100.5", "3")], [])
    out = proc.process(
        book_frame("update", [("100.5", "3")], [], seq=51, prev=50, crc=exchange.checksum()),
        RECV,
    )
    assert (out.gaps, out.checksum_failures, out.checksums_verified) == ((), (), 1)
    out = proc.process(book_frame("update", [], [], seq=51, prev=51, crc=exchange.checksum()), RECV)
    assert (out.gaps, out.checksum_failures, out.checksums_verified) == ((), (), 1)
    assert proc.books.book("BTC-USDT").last_seq == 51


def test_a_wrong_checksum_fails_the_book_until_a_new_snapshot() -> None:
    exchange = ExchangeBook()
    exchange.change([("100.0", "1")], [("101.0", "2")])
    proc = processor()
    snapshot(exchange, proc, seq=10)
    exchange.change([("99.0", "5")], [])
    wrong = exchange.checksum() ^ 1
    out = proc.process(book_frame("update", [("99.0", "5")], [], seq=11, prev=10, crc=wrong), RECV)
    assert out.checksum_failures == ["BTC-USDT"]
    assert out.snapshots_needed == ["BTC-USDT"]
    assert not proc.books.book("BTC-USDT").synced
    out = snapshot(exchange, proc, seq=12)  # what resubscribing the book brings
    assert out.resynced == ["BTC-USDT"]
    assert out.checksums_verified == 1
    assert proc.books.totals().checksum_failures == 1


def test_a_prev_seq_id_gap_resets_the_book() -> None:
    exchange = ExchangeBook()
    exchange.change([("100.0", "1")], [("101.0", "2")])
    proc = processor()
    snapshot(exchange, proc, seq=10)
    out = proc.process(
        book_frame("update", [], [("101.0", "1")], seq=13, prev=12, crc=exchange.checksum()), RECV
    )
    assert out.gaps == ["BTC-USDT"]
    assert out.snapshots_needed == ["BTC-USDT"]
    assert out.checksum_failures == ()
    assert proc.books.totals().gaps == 1


def test_books_are_published_from_okx_updates() -> None:
    exchange = ExchangeBook()
    exchange.change([("100.0", "1.000")], [("101.0", "2")])
    out = snapshot(exchange, processor(), seq=1)
    [book] = out.records
    assert isinstance(book, Book)
    assert (book.exchange, book.seq, book.bids, book.asks) == (
        "okx",
        1,
        [(100.0, 1.0)],
        [(101.0, 2.0)],
    )


# --- REST book snapshots and how updates join them --------------------------------------------

# GET /api/v5/market/books as OKX documents it: levels [price, size, "0", orders], ts in ms.
REST_BOOK = {
    "asks": [["41006.8", "0.60038921", "0", "1"], ["41007", "1.50", "0", "3"]],
    "bids": [["41006.3", "0.30178218", "0", "2"], ["41005.9", "2", "0", "1"]],
    "ts": "1629966436396",
    "seqId": 3235612345,
}


def rest_body(*books: dict[str, Any]) -> bytes:
    return orjson.dumps({"code": "0", "msg": "", "data": list(books or [REST_BOOK])})


def test_snapshot_requests_ask_for_the_400_levels_the_books_channel_keeps() -> None:
    requests = snapshot_requests("https://www.okx.com/", ["BTC-USDT", "ETH-USDT-PERP"])
    assert [(r.symbol, r.url) for r in requests] == [
        ("BTC-USDT", "https://www.okx.com/api/v5/market/books?instId=BTC-USDT&sz=400"),
        ("ETH-USDT-PERP", "https://www.okx.com/api/v5/market/books?instId=ETH-USDT-SWAP&sz=400"),
    ]
    assert [snapshot_symbol(r.url) for r in requests] == ["BTC-USDT", "ETH-USDT-PERP"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://www.okx.com/api/v5/market/books?sz=400", "has no instId parameter"),
        (
            "https://www.okx.com/api/v5/market/books?instId=BTC-USD-220325-40000-C",
            "is not supported",
        ),
    ],
)
def test_a_snapshot_url_without_a_symbol_is_named(url: str, message: str) -> None:
    with pytest.raises(FrameError, match=f"^okx: snapshot URL .*{message}"):
        snapshot_symbol(url)


@pytest.mark.parametrize("seq_id", [3235612345, "3235612345"])
def test_a_rest_snapshot_keeps_level_text_time_and_seq_id(seq_id: int | str) -> None:
    update = map_snapshot(rest_body({**REST_BOOK, "seqId": seq_id}), "BTC-USDT", RECV)
    assert update == BookUpdate(
        "okx",
        "BTC-USDT",
        1629966436396 * MS,
        RECV,
        [(41006.3, 0.30178218), (41005.9, 2.0)],
        [(41006.8, 0.60038921), (41007.0, 1.5)],
        is_snapshot=True,
        last_seq=3235612345,
        bid_texts=[("41006.3", "0.30178218"), ("41005.9", "2")],
        ask_texts=[("41006.8", "0.60038921"), ("41007", "1.50")],
    )


def test_a_rest_snapshot_without_seq_id_maps_with_none() -> None:
    book = {k: v for k, v in REST_BOOK.items() if k != "seqId"}
    update = map_snapshot(rest_body(book).decode(), "BTC-USDT", RECV)
    assert (update.last_seq, update.is_snapshot, update.checksum) == (None, True, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"code":"51001","msg":"Instrument ID does not exist","data":[]}',
         "books snapshot: error 51001: Instrument ID does not exist"),
        (b'{"code":"50011","msg":"Too Many Requests"}', "error 50011: Too Many Requests"),
        (b"<html>busy</html>", "not JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"msg":"","data":[]}', "books snapshot: field 'code' is missing"),
        (b'{"code":"0","msg":""}', "books snapshot: field 'data' is missing"),
        (b'{"code":"0","msg":"","data":{}}', "books snapshot: data {} is not a list"),
        (b'{"code":"0","msg":"","data":[]}', "data holds 0 books, expected one"),
        (rest_body(REST_BOOK, REST_BOOK), "data holds 2 books"),
        (rest_body({**REST_BOOK, "bids": [["1"]]}), "books snapshot: bids .* is not a list of"),
        (rest_body({**REST_BOOK, "asks": None}), "books snapshot: asks None is not a list of"),
        (rest_body({k: v for k, v in REST_BOOK.items() if k != "ts"}), "field 'ts' is missing"),
        (rest_body({**REST_BOOK, "ts": "soon"}), "books snapshot: ts 'soon' is not a time"),
        (rest_body({**REST_BOOK, "seqId": "-5"}), "books snapshot: seqId '-5' is not a seq"),
        (rest_body({**REST_BOOK, "seqId": 1.5}), "books snapshot: seqId 1.5 is not a seq"),
    ],
)  # fmt: skip
def test_a_bad_rest_snapshot_names_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=f"^okx: .*{message}"):
        map_snapshot(body, "BTC-USDT", RECV)


def rest_processor() -> FrameProcessor:
    """Books as they will be after August 2026: REST snapshots, updates without checksums."""
    books = BookKeeper(OKX.name, OKX.book_rules, depth=5, interval_ns=1)
    return FrameProcessor(
        OKX.make_mapper(["BTC-USDT"]), books, max_future_skew_ns=10**18, known_symbols=None
    )


def update_frame(prev: int, seq: int, bid: tuple[str, str], inst_id: str = "BTC-USDT") -> str:
    """A `books` update as OKX pushes it once the checksum is gone: one bid level changed."""
    data = {"asks": [], "bids": [[*bid, "0", "1"]], "ts": "1700000000000", "prevSeqId": prev,
            "seqId": seq}  # fmt: skip
    return _push("books", inst_id, [data], action="update")


def rest_snapshot(seq: int | None) -> BookUpdate:
    book: dict[str, Any] = {"asks": [["101", "1", "0", "1"]], "bids": [["100", "1", "0", "1"]],
                            "ts": "1700000000000"}  # fmt: skip
    if seq is not None:
        book["seqId"] = seq
    return map_snapshot(rest_body(book), "BTC-USDT", RECV)


S = 1000  # the REST snapshot's seqId


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "after the snapshot"])
@pytest.mark.parametrize(
    ("updates", "applied", "gap"),
    [
        # OKX's rule: skip seqId <= S; the first applied has prevSeqId <= S < seqId.
        ([(990, 995), (995, 1003), (1003, 1007)], [1003, 1007], False),  # prev < S < seq
        ([(996, 1000), (1000, 1004)], [1004], False),  # seqId == S is skipped; prev == S applies
        ([(1000, 1000), (1000, 1002)], [1002], False),  # no change while at S: a heartbeat
        ([(1001, 1005)], [], True),  # prevSeqId > S: something between is missing
        ([(995, 1003), (1004, 1006)], [1003], True),  # bridged, then a broken chain
    ],
    ids=["prev<S<seq bridges", "prev==S applies", "heartbeat at S", "prev>S gap", "chain gap"],
)
def test_updates_join_a_rest_snapshot_by_okx_rule(
    updates: list[tuple[int, int]], applied: list[int], gap: bool, buffered: bool
) -> None:
    """Each update sets a bid at its own price, so the book shows which were applied."""
    proc = rest_processor()
    frames = [update_frame(prev, seq, (f"{seq / 100:.2f}", "1")) for prev, seq in updates]
    outs = [] if buffered else [proc.process_update(rest_snapshot(S))]
    outs += [proc.process(frame, RECV) for frame in frames]
    if buffered:  # the REST answer came after the updates: they wait for it
        outs.append(proc.process_update(rest_snapshot(S)))
    book = proc.books.book("BTC-USDT")
    assert any(out.gaps for out in outs) is gap
    if gap:
        return
    assert sorted(book.bids) == sorted([100.0, *(seq / 100 for seq in applied)])
    assert book.last_seq == applied[-1]


def test_a_rest_snapshot_without_seq_id_is_anchored_by_the_next_update() -> None:
    proc = rest_processor()
    out = proc.process_update(rest_snapshot(None))
    assert [type(r) for r in out.records] == [Book]  # synced and published at once
    book = proc.books.book("BTC-USDT")
    assert (book.synced, book.last_seq) == (True, None)
    out = proc.process(update_frame(4711, 4712, ("99.5", "2")), RECV)  # any prevSeqId
    assert (out.gaps, book.last_seq, book.bids[99.5]) == ((), 4712, 2.0)
    assert proc.process(update_frame(4712, 4713, ("99.4", "1")), RECV).gaps == ()
    out = proc.process(update_frame(4714, 4715, ("99.3", "1")), RECV)  # 4713 -> 4714 missing
    assert out.gaps == ["BTC-USDT"]
    assert out.snapshots_needed == ["BTC-USDT"]


def test_a_recorded_rest_snapshot_normalizes_offline(tmp_path: Path) -> None:
    """What `marketstream record` writes (the REST line's url names the instrument) is what
    `marketstream normalize` syncs the book from: an update first, the snapshot after. (Spot:
    `normalize` passes no instrument metadata yet, which a swap's sizes need.)"""
    [request] = snapshot_requests("https://www.okx.com", ["BTC-USDT"])
    public = "wss://ws.okx.com:8443/ws/v5/public"
    frames = [
        (public, update_frame(995, 1003, ("1", "1"), "BTC-USDT")),
        (request.url, rest_body({**REST_BOOK, "seqId": 1000}).decode()),
        (public, update_frame(1003, 1004, ("2", "1"), "BTC-USDT")),
    ]
    path = tmp_path / "okx.jsonl"
    path.write_bytes(
        b"".join(
            RecordedFrame(RECV + i, "okx", u, f).to_json_line() for i, (u, f) in enumerate(frames)
        )
    )
    out = io.BytesIO()
    ingest = load_config(SHIPPED_CONFIG, environ={}).ingest
    summary = normalize_recording(path, "okx", out, ingest)
    assert (summary.rejected, summary.gaps, summary.books_waiting) == ({}, 0, 0)
    books = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [(b["type"], b["symbol"], b["seq"]) for b in books] == [
        ("book", "BTC-USDT", 1003),  # the snapshot with the buffered update on it
        ("book", "BTC-USDT", 1004),
    ]
    assert books[1]["bids"] == [[41006.3, 0.30178218], [41005.9, 2.0], [2.0, 1.0], [1.0, 1.0]]


def test_a_swap_rest_snapshot_is_in_base_units_with_its_instrument() -> None:
    """BTC-USDT-SWAP: 100 contracts x ctVal 0.01 = 1 BTC, the same units as the pushes'."""
    book = {"asks": [["101", "100", "0", "1"]], "bids": [["100", "50", "0", "1"]],
            "ts": "1700000000000", "seqId": 7}  # fmt: skip
    snapshot = map_snapshot(rest_body(book), "BTC-USDT-PERP", RECV, okx_instruments())
    assert (snapshot.bids, snapshot.asks) == ([(100.0, 0.5)], [(101.0, 1.0)])
    assert (snapshot.bid_texts, snapshot.ask_texts) == ([("100", "50")], [("101", "100")])
    with pytest.raises(FrameError, match="BTC-USDT-PERP: no instrument metadata"):
        map_snapshot(rest_body(book), "BTC-USDT-PERP", RECV)


# --- subscribe and endpoint rules ------------------------------------------------------------


def test_the_exchange_is_registered_with_its_rules() -> None:
    assert get_venue("okx") is OKX
    assert OKX.snapshot_requests is snapshot_requests
    assert OKX.map_snapshot is map_snapshot
    assert OKX.snapshot_symbol is snapshot_symbol
    assert OKX.resubscribe_book is resubscribe_book  # without a rest_url
    assert OKX.sequencing is Sequencing.PREV_LAST
    assert OKX.book_rules.checksum is checksum
    assert (OKX.checksum_depth, OKX.book_depth_limit) == (25, 400)
    assert OKX.ping_message == "ping"
    assert OKX.ping_interval_s < 30  # OKX closes a connection quiet for 30 s
    assert OKX.max_messages_per_s == 3
    assert OKX.channels == {
        "trades", "quotes", "candles", "books", "funding", "liquidations", "open_interest"
    }  # fmt: skip
    assert OKX.instrument_urls is not None
    assert OKX.instrument_urls("https://www.okx.com/") == [
        f"https://www.okx.com/api/v5/public/instruments?instType={t}"
        for t in ("SPOT", "SWAP", "FUTURES")
    ]


def test_subscribe_names_each_channel_and_instrument_and_skips_spot_funding() -> None:
    sub = Subscription(("BTC-USDT", "BTC-USDT-PERP"), ("trades", "quotes", "books", "funding"))
    [message] = subscribe_messages(sub)
    assert orjson.loads(message) == {
        "op": "subscribe",
        "args": [
            {"channel": "trades", "instId": "BTC-USDT"},
            {"channel": "tickers", "instId": "BTC-USDT"},
            {"channel": "books", "instId": "BTC-USDT"},
            {"channel": "trades", "instId": "BTC-USDT-SWAP"},
            {"channel": "tickers", "instId": "BTC-USDT-SWAP"},
            {"channel": "books", "instId": "BTC-USDT-SWAP"},
            {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
        ],
    }


def test_many_instruments_are_subscribed_in_requests_of_bounded_size() -> None:
    symbols = tuple(f"C{i}-USDT-PERP" for i in range(200))
    messages = subscribe_messages(Subscription(symbols, ("trades", "books")))
    assert len(messages) > 1
    assert all(len(m.encode()) <= 4096 for m in messages)
    args = [arg for m in messages for arg in orjson.loads(m)["args"]]
    assert [a["instId"] for a in args[::2]] == [f"C{i}-USDT-SWAP" for i in range(200)]
    assert len(args) == 400


def test_a_channel_okx_does_not_offer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="okx: channel 'orders' is not offered"):
        subscribe_messages(Subscription(("BTC-USDT",), ("orders",)))  # type: ignore[arg-type]


def test_candles_are_split_onto_the_business_endpoint() -> None:
    sub = Subscription(("BTC-USDT", "ETH-USDT-PERP"), ("trades", "candles", "books", "funding"))
    public, business = split(sub)
    assert public == Subscription(sub.symbols, ("trades", "books", "funding"))
    assert business == Subscription(sub.symbols, ("candles",))
    base = "wss://ws.okx.com:8443/ws/v5"
    assert connect_url(base, public) == f"{base}/public"
    assert connect_url(base + "/", business) == f"{base}/business"
    assert connect_url(base + "/public", business) == f"{base}/business"  # an endpoint as base
    assert [orjson.loads(m)["args"][0]["channel"] for m in subscribe_messages(business)] == [
        "candle1m"
    ]
    with pytest.raises(ConfigError, match=r"different endpoints .* split the subscription"):
        connect_url(base, sub)


def test_a_part_with_nothing_to_subscribe_is_dropped() -> None:
    assert split(Subscription(("BTC-USDT",), ("funding", "candles"))) == [
        Subscription(("BTC-USDT",), ("candles",))
    ]


def test_planned_connections_use_both_endpoints() -> None:
    others = {"BINANCE", "BINANCE_USDM", "COINBASE", "KRAKEN", "BYBIT"}
    environ = {f"MARKETSTREAM_EXCHANGES__{name}__ENABLED": "false" for name in others} | {
        "MARKETSTREAM_EXCHANGES__OKX__SYMBOLS": "[BTC-USDT, BTC-USDT-PERP]",
        "MARKETSTREAM_EXCHANGES__OKX__CHANNELS": "[trades, candles, funding]",
        "MARKETSTREAM_EXCHANGES__OKX__URL": "wss://ws.okx.com:8443/ws/v5",
    }
    config = load_config(SHIPPED_CONFIG, environ=environ)
    plans = plan_connections(config, only=["okx"])
    assert [
        (p.subscription.channels, OKX.connect_url(p.config.url, p.subscription)) for p in plans
    ] == [
        (("trades", "funding"), "wss://ws.okx.com:8443/ws/v5/public"),
        (("candles",), "wss://ws.okx.com:8443/ws/v5/business"),
    ]


def test_resubscribing_a_book_unsubscribes_then_subscribes() -> None:
    assert [orjson.loads(m) for m in resubscribe_book("ETH-USDT-PERP")] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": "ETH-USDT-SWAP"}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": "ETH-USDT-SWAP"}]},
    ]


def test_the_generated_session_maps_with_instruments_into_every_record_type() -> None:
    """The demo's session: swap sizes are contracts (3 x ctVal 0.01 = 0.03 BTC), and the
    swap has open interest and liquidations."""
    mapper = OKX.make_mapper(("BTC-USDT", "BTC-USDT-PERP"), okx_instruments())
    items = [item for f in okx_session(40) for item in mapper(f.frame, f.recv_ns)]
    swap_trades = [i for i in items if isinstance(i, Trade) and i.symbol == "BTC-USDT-PERP"]
    assert swap_trades
    assert {t.size for t in swap_trades} == {0.03}
    interest = [i for i in items if isinstance(i, OpenInterest)]
    liquidations = [i for i in items if isinstance(i, Liquidation)]
    assert interest
    assert liquidations
    assert {i.symbol for i in [*interest, *liquidations]} == {"BTC-USDT-PERP"}
    assert all(i.value is not None and i.value > i.open_interest for i in interest)


def test_an_inverse_trade_at_price_zero_is_refused_with_the_reason() -> None:
    frame = _push("trades", "BTC-USD-SWAP", [{**TRADE, "instId": "BTC-USD-SWAP", "px": "0"}])
    with pytest.raises(FrameError, match=r"okx: price 0.0 of an inverse contract: .* positive"):
        okx(frame, RECV)
