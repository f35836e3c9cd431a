"""Coinbase Exchange: real recorded frames, documented frame formats, malformed frames,
purity, and the subscribe rules."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from marketstream.errors import ConfigError
from marketstream.schemas.records import Book, Quote, Side, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item
from marketstream.venues.base.venue import Sequencing, Subscription
from marketstream.venues.coinbase.symbols import native_symbol
from marketstream.venues.coinbase.venue import COINBASE
from tests.venues.conftest import ReadRecording, Recorded, assert_valid

RECV = 1_700_000_000_123_456_789
TIME = "2023-11-14T22:13:19.123456Z"
TIME_NS = 1_699_999_999_123_456_000

mapper = COINBASE.make_mapper(())


def _frame(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()


def _map_one(frame: str | bytes) -> Item:
    items = mapper(frame, RECV)
    assert len(items) == 1
    return items[0]


def _map_recording(rows: list[Recorded]) -> list[tuple[Recorded, list[Item]]]:
    return [(row, mapper(row.frame, row.recv_ns)) for row in rows]


# --- real frames -----------------------------------------------------------------------------


def test_recording_maps_every_frame(read_recording: ReadRecording) -> None:
    mapped = _map_recording(read_recording("coinbase.jsonl"))
    kinds: Counter[str] = Counter()
    for row, items in mapped:
        frame_type = orjson.loads(row.frame)["type"]
        for item in items:
            assert_valid(item, row.recv_ns)
            kind = type(item).__name__
            if isinstance(item, BookUpdate):
                kind = "snapshot" if item.is_snapshot else "l2update"
            kinds[f"{frame_type}->{kind}"] += 1
        if not items:
            kinds[f"{frame_type}->nothing"] += 1
    assert kinds == {
        "match->Trade": 97,
        "last_match->Trade": 10,
        "ticker->Quote": 107,
        "snapshot->snapshot": 10,
        "l2update->l2update": 9719,
        "subscriptions->nothing": 3,
    }


def test_recorded_tickers_have_no_sizes(read_recording: ReadRecording) -> None:
    """2021 tickers sent prices only; a size is never invented."""
    quotes = [
        item
        for _, items in _map_recording(read_recording("coinbase.jsonl"))
        for item in items
        if isinstance(item, Quote)
    ]
    assert len(quotes) == 107
    assert all(q.bid_sz is None and q.ask_sz is None and q.last_px is not None for q in quotes)


def test_first_recorded_frames_of_each_kind(read_recording: ReadRecording) -> None:
    mapped = _map_recording(read_recording("coinbase.jsonl"))
    first: dict[str, Item] = {}
    for row, items in mapped:
        for item in items:
            first.setdefault(orjson.loads(row.frame)["type"], item)
    assert first["ticker"] == Quote(
        "coinbase",
        "BAND-GBP",
        1618677810244075000,  # 2021-04-17T16:43:30.244075Z, exactly
        1618677817079694080,
        14.755,
        None,
        14.806,
        None,
        14.7775,
    )
    assert first["last_match"] == Trade(
        "coinbase", "BAND-GBP", 1618677810244075000, 1618677817079761920,
        "881613", 14.7775, 0.04, "buy",  # the maker sold
    )  # fmt: skip
    assert first["match"] == Trade(
        "coinbase", "SKL-BTC", 1618677817089723000, 1618677817129516032,
        "280232", 0.00001305, 985.0, "buy",
    )  # fmt: skip
    assert first["l2update"] == BookUpdate(
        "coinbase",
        "SKL-BTC",
        1618677817075687000,
        1618677817118782976,
        [],
        [(0.00001306, 660.5)],
        is_snapshot=False,
    )


def test_recorded_snapshots_keep_their_sides(read_recording: ReadRecording) -> None:
    """Bids best-first descending, asks ascending, and not crossed: sides are not swapped."""
    snapshots = [
        (row, item)
        for row, items in _map_recording(read_recording("coinbase.jsonl"))
        for item in items
        if isinstance(item, BookUpdate) and item.is_snapshot
    ]
    assert len(snapshots) == 10
    for row, snapshot in snapshots:
        assert snapshot.ts == row.recv_ns  # 2021 snapshots carry no time
        bids = [price for price, _ in snapshot.bids]
        asks = [price for price, _ in snapshot.asks]
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)
        assert bids[0] < asks[0]
    assert snapshots[0][1].symbol == "BAND-GBP"
    assert snapshots[0][1].asks[0] == (14.8024, 12.77)


# --- documented frames -----------------------------------------------------------------------

MATCH = {
    "type": "match", "trade_id": 10, "sequence": 50, "maker_order_id": "ac928c66",
    "taker_order_id": "132fb6ae", "time": TIME, "product_id": "BTC-USD", "size": "5.23512",
    "price": "400.23", "side": "sell",
}  # fmt: skip
TICKER = {
    "type": "ticker", "sequence": 37475248783, "product_id": "ETH-USD", "price": "1285.22",
    "open_24h": "1310.79", "volume_24h": "245532.79269678", "low_24h": "1280.52",
    "high_24h": "1313.8", "volume_30d": "9788783.60117027", "best_bid": "1285.04",
    "best_bid_size": "0.46688654", "best_ask": "1285.27", "best_ask_size": "1.56637040",
    "side": "buy", "time": TIME, "trade_id": 370843401, "last_size": "11.4396987",
}  # fmt: skip


@pytest.mark.parametrize(("maker_side", "taker_side"), [("sell", "buy"), ("buy", "sell")])
@pytest.mark.parametrize("kind", ["match", "last_match"])
def test_match_side_is_the_takers(kind: str, maker_side: str, taker_side: Side) -> None:
    frame = _frame({**MATCH, "type": kind, "side": maker_side})
    assert _map_one(frame) == Trade(
        "coinbase", "BTC-USD", TIME_NS, RECV, "10", 400.23, 5.23512, taker_side
    )


def test_ticker_with_sizes() -> None:
    assert _map_one(_frame(TICKER)) == Quote(
        "coinbase", "ETH-USD", TIME_NS, RECV, 1285.04, 0.46688654, 1285.27, 1.5663704, 1285.22
    )


def test_first_ticker_without_time_uses_recv_ts() -> None:
    data = {k: v for k, v in TICKER.items() if k not in ("time", "trade_id", "last_size", "side")}
    quote = _map_one(_frame(data))
    assert isinstance(quote, Quote)
    assert quote.ts == RECV


def test_ticker_with_null_sizes_keeps_them_unknown() -> None:
    quote = _map_one(_frame({**TICKER, "best_bid_size": None, "best_ask_size": None}))
    assert isinstance(quote, Quote)
    assert (quote.bid_sz, quote.ask_sz) == (None, None)


def test_snapshot_with_time() -> None:
    frame = _frame(
        {
            "type": "snapshot",
            "product_id": "BTC-USD",
            "bids": [["10101.10", "0.45054140"]],
            "asks": [["10102.55", "0.57753524"], ["10103.00", "1.5"]],
            "time": TIME,
        }
    )
    assert _map_one(frame) == BookUpdate(
        "coinbase",
        "BTC-USD",
        TIME_NS,
        RECV,
        [(10101.1, 0.4505414)],
        [(10102.55, 0.57753524), (10103.0, 1.5)],
        is_snapshot=True,
    )


def test_l2update_splits_changes_by_side() -> None:
    frame = _frame(
        {
            "type": "l2update",
            "product_id": "BTC-USD",
            "time": TIME,
            "changes": [
                ["buy", "10101.80", "0.162567"],
                ["sell", "10102.00", "0"],
                ["buy", "10101.70", "1.5"],
            ],
        }
    )
    assert _map_one(frame) == BookUpdate(
        "coinbase",
        "BTC-USD",
        TIME_NS,
        RECV,
        [(10101.8, 0.162567), (10101.7, 1.5)],  # in the order sent
        [(10102.0, 0.0)],  # size 0 removes the level
        is_snapshot=False,
    )


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "heartbeat", "sequence": 90, "last_trade_id": 20, "product_id": "BTC-USD",
         "time": TIME},
        {"type": "subscriptions", "channels": [{"name": "ticker", "product_ids": ["BTC-USD"]}]},
    ],
)  # fmt: skip
def test_control_messages_map_to_nothing(frame: dict[str, Any]) -> None:
    assert mapper(_frame(frame), RECV) == []


def test_error_message_raises_with_message_and_reason() -> None:
    frame = _frame(
        {"type": "error", "message": "Failed to subscribe", "reason": "level2 requires auth"}
    )
    with pytest.raises(FrameError, match=r"coinbase: error: Failed to subscribe \(level2 requires"):
        mapper(frame, RECV)


# --- malformed frames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", "coinbase: not JSON: "),
        (b"[]", "coinbase: expected a JSON object, got list"),
        (
            _frame({k: v for k, v in MATCH.items() if k != "price"}),
            "match: field 'price' is missing",
        ),
        (_frame({**MATCH, "price": "abc"}), "match: price 'abc' is not a decimal number"),
        (
            _frame({**MATCH, "side": "long"}),
            "match: side 'long' is not one of the",
        ),
        (_frame({**MATCH, "time": "yesterday"}), "match: time 'yesterday' is not an ISO-8601"),
        (
            _frame({**MATCH, "time": "2021-04-17T16:43:30.244075"}),
            "time '2021-04-17T16:43:30.244075' is not",
        ),
        (_frame({**MATCH, "product_id": None}), "match: product_id None is not a string"),
        (
            _frame({**TICKER, "best_bid_size": "n/a"}),
            "ticker: best_bid_size 'n/a' is not a decimal",
        ),
        (_frame({**MATCH, "type": "received"}), "coinbase: unknown message type 'received'"),
        (_frame({**MATCH, "type": {"a": 1}}), "coinbase: unknown message type {'a': 1}"),
        (_frame({"product_id": "BTC-USD"}), "coinbase: message: field 'type' is missing"),
        (
            _frame({"type": "snapshot", "product_id": "BTC-USD", "bids": "x", "asks": []}),
            "snapshot: bids 'x' is not a list of",
        ),
        (
            _frame(
                {
                    "type": "l2update",
                    "product_id": "BTC-USD",
                    "time": TIME,
                    "changes": [["hold", "1", "1"]],
                }
            ),
            r"l2update: changes\[0\]\[0\] 'hold' is not one of",
        ),
        (
            _frame(
                {
                    "type": "l2update",
                    "product_id": "BTC-USD",
                    "time": TIME,
                    "changes": [["buy", "1"]],
                }
            ),
            r"l2update: changes\[0\] .* is not a list of",
        ),
    ],
)
def test_malformed_frame_names_what_is_wrong(frame: str | bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        mapper(frame, RECV)


# --- purity ----------------------------------------------------------------------------------


def test_mapping_is_pure() -> None:
    first = mapper(_frame(MATCH), RECV)
    mapper(_frame(TICKER), RECV + 1)
    mapper(_frame({**MATCH, "trade_id": 11, "side": "buy"}), RECV + 2)
    with pytest.raises(FrameError):
        mapper("{", RECV)
    again = mapper(_frame(MATCH), RECV)
    assert again == first
    assert again[0] is not first[0]


# --- exchange rules --------------------------------------------------------------------------


def test_subscribe_message_and_url() -> None:
    subscription = Subscription(("BTC-USD", "ETH-USD"), ("trades", "quotes", "books"))
    url = "wss://ws-feed.exchange.coinbase.com"
    assert COINBASE.connect_url(url, subscription) == url
    assert [orjson.loads(m) for m in COINBASE.subscribe_messages(subscription)] == [
        {
            "type": "subscribe",
            "product_ids": ["BTC-USD", "ETH-USD"],
            "channels": ["matches", "ticker", "level2_batch", "heartbeat"],
        }
    ]


def test_candles_are_not_offered() -> None:
    with pytest.raises(ConfigError, match="coinbase: channel 'candles' is not offered"):
        COINBASE.subscribe_messages(Subscription(("BTC-USD",), ("trades", "candles")))


def test_perpetual_symbols_are_a_config_error() -> None:
    assert native_symbol("BTC-USD") == "BTC-USD"
    with pytest.raises(ConfigError, match="coinbase: symbol 'BTC-USD-PERP' is a perpetual"):
        COINBASE.make_mapper(["BTC-USD", "BTC-USD-PERP"])


def test_rules() -> None:
    assert COINBASE.name == "coinbase"
    assert COINBASE.sequencing is Sequencing.NONE
    assert COINBASE.channels == {"trades", "quotes", "books"}
    assert COINBASE.snapshot_requests is None
    assert COINBASE.map_snapshot is None
    assert COINBASE.ping_message is None


def test_a_nan_price_is_rejected_and_the_book_carries_on() -> None:
    """`float("nan")` parses; a NaN level must be refused before it reaches the book."""
    from marketstream.ingest.books import BookKeeper  # noqa: PLC0415
    from marketstream.ingest.processor import FrameProcessor  # noqa: PLC0415

    books = BookKeeper(COINBASE.name, COINBASE.book_rules, depth=5, interval_ns=1)
    processor = FrameProcessor(
        COINBASE.make_mapper(()), books, max_future_skew_ns=10**18, known_symbols=None
    )
    snapshot = {
        "type": "snapshot",
        "product_id": "BTC-USD",
        "bids": [["100.0", "1"]],
        "asks": [["101.0", "1"]],
        "time": TIME,
    }
    processor.process(_frame(snapshot), RECV)

    def update(price: str, at: str) -> str:
        return _frame(
            {
                "type": "l2update",
                "product_id": "BTC-USD",
                "changes": [["buy", price, "2"]],
                "time": at,
            }
        )

    bad = processor.process(update("nan", "2023-11-14T22:13:20.000000Z"), RECV)
    assert [r.reason for r in bad.rejected] == [
        "coinbase book update for BTC-USD: level [nan, 2.0] is not a positive finite price "
        "with a finite size >= 0"
    ]
    good = processor.process(update("100.5", "2023-11-14T22:13:21.000000Z"), RECV)
    assert not good.rejected
    assert [book.bids for book in good.records if isinstance(book, Book)] == [
        [(100.5, 2.0), (100.0, 1.0)]
    ]
    assert len(good.records) == 1
