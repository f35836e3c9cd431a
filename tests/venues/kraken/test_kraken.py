"""Kraken spot: documented v2 and v1 frame formats, the book checksum (against Kraken's worked
example and an independent implementation), the depth each book update names, control and
malformed frames, purity, and the subscribe / resubscribe rules."""

from __future__ import annotations

import binascii
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest

from marketstream.errors import ConfigError
from marketstream.ingest.books import BookKeeper, BookOutcome
from marketstream.schemas.records import Candle, Quote, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item
from marketstream.venues.base.venue import Sequencing, Subscription
from marketstream.venues.kraken.checksum import checksum
from marketstream.venues.kraken.mapper import make_mapper, map_frame
from marketstream.venues.kraken.symbols import native_symbol, normalized_symbol
from marketstream.venues.kraken.venue import KRAKEN
from marketstream.venues.registry import VENUES, get_venue
from tests.venues.conftest import assert_valid

RECV = 1_700_000_000_123_456_789  # a receive time in ns, after every documented event time
S = 1_000_000_000


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _map_one(frame: str) -> Item:
    items = map_frame(frame, RECV)
    assert len(items) == 1
    assert_valid(items[0], RECV)
    return items[0]


def _update(frame: str) -> BookUpdate:
    update = _map_one(frame)
    assert isinstance(update, BookUpdate)
    return update


def _keeper() -> BookKeeper:
    return BookKeeper("kraken", KRAKEN.book_rules, depth=10, interval_ns=S)


# --- an independent reference for the book checksum ------------------------------------------


class ReferenceBook:
    """Kraken's documented book rules, written without the module: Decimal prices, a depth
    limit, and the checksum string with int() dropping leading zeros, hashed by binascii."""

    def __init__(
        self, bids: list[tuple[str, str]], asks: list[tuple[str, str]], depth: int = 25
    ) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"b": {}, "a": {}}
        for price, qty in bids:
            self.set("b", price, qty)
        for price, qty in asks:
            self.set("a", price, qty)

    def set(self, side: str, price: str, qty: str) -> None:
        levels = self.sides[side]
        if Decimal(qty) == 0:
            levels.pop(Decimal(price), None)
        else:
            levels[Decimal(price)] = (price, qty)
        for worst in self.ordered(side)[self.depth :]:
            del levels[Decimal(worst[0])]

    def ordered(self, side: str) -> list[tuple[str, str]]:
        levels = self.sides[side]
        return [levels[p] for p in sorted(levels, reverse=side == "b")]

    def checksum(self) -> int:
        top = self.ordered("a")[:10] + self.ordered("b")[:10]
        text = "".join(str(int(p.replace(".", ""))) + str(int(q.replace(".", ""))) for p, q in top)
        return binascii.crc32(text.encode())


# --- checksum --------------------------------------------------------------------------------

# Kraken's "Book checksum (WebSocket v2)" guide: this snapshot's checksum is 3310070434.
DOC_BIDS = [
    ("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]  # fmt: skip
DOC_ASKS = [
    ("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]  # fmt: skip
DOC_CHECKSUM = 3310070434


def _v2_levels(levels: list[tuple[str, str]]) -> str:
    """Levels as v2 writes them: JSON numbers at full precision, not strings."""
    return ",".join(f'{{"price":{price},"qty":{qty}}}' for price, qty in levels)


def _v2_book(
    kind: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    crc: int,
    timestamp: str | None = None,
) -> str:
    stamp = f',"timestamp":"{timestamp}"' if timestamp else ""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD",'
        f'"bids":[{_v2_levels(bids)}],"asks":[{_v2_levels(asks)}],"checksum":{crc}{stamp}}}]}}'
    )


def test_checksum_of_kraken_worked_example() -> None:
    assert checksum(DOC_BIDS, DOC_ASKS) == DOC_CHECKSUM
    assert ReferenceBook(DOC_BIDS, DOC_ASKS).checksum() == DOC_CHECKSUM


def test_checksum_drops_points_and_leading_zeros() -> None:
    # The guide's step: price "45285.2" -> "452852", qty "0.00100000" -> "100000".
    assert checksum([], [("45285.2", "0.00100000")]) == binascii.crc32(b"452852100000")
    assert checksum([("0.05000", "0.00000304")], []) == binascii.crc32(b"5000304")


def test_v2_book_snapshot_keeps_the_number_text_the_checksum_needs() -> None:
    frame = _v2_book("snapshot", DOC_BIDS, DOC_ASKS, DOC_CHECKSUM)
    update = _map_one(frame)
    assert isinstance(update, BookUpdate)
    assert update.is_snapshot
    assert (update.symbol, update.ts, update.checksum) == ("BTC-USD", RECV, DOC_CHECKSUM)
    assert update.bid_texts == DOC_BIDS  # "45281.0" and "0.10000000", not 45281.0 and 0.1
    assert update.ask_texts == DOC_ASKS
    assert update.bids[3] == (45281.0, 0.1)
    assert _keeper().apply(update).books  # verified, then published
    # Floats would have lost the trailing zeros and with them the checksum.
    floats = json.loads(frame)["data"][0]
    float_bids = [(str(level["price"]), str(level["qty"])) for level in floats["bids"]]
    float_asks = [(str(level["price"]), str(level["qty"])) for level in floats["asks"]]
    assert checksum(float_bids, float_asks) != DOC_CHECKSUM


def test_v2_book_updates_verify_and_a_wrong_checksum_fails() -> None:
    reference = ReferenceBook(DOC_BIDS, DOC_ASKS)
    keeper = _keeper()
    keeper.apply(_update(_v2_book("snapshot", DOC_BIDS, DOC_ASKS, reference.checksum())))
    # qty 0 (a JSON integer) removes the best bid; a new best ask arrives.
    reference.set("b", "45283.5", "0")
    reference.set("a", "45285.1", "0.50000000")
    frame = _v2_book(
        "update", [("45283.5", "0")], [("45285.1", "0.50000000")], reference.checksum(),
        "2023-10-06T17:35:55.440295Z",
    )  # fmt: skip
    update = _map_one(frame)
    assert isinstance(update, BookUpdate)
    assert not update.is_snapshot
    assert update.ts == 1696613755440295000
    assert update.bids == [(45283.5, 0.0)]
    outcome = keeper.apply(update)
    assert not outcome.checksum_failed
    wrong = _v2_book(
        "update", [("45283.4", "2.00000000")], [], reference.checksum(), "2023-10-06T17:35:56Z"
    )
    failed = keeper.apply(_update(wrong))
    assert failed.checksum_failed
    assert failed.needs_snapshot


def test_the_keeper_truncates_to_the_subscribed_depth() -> None:
    bids = [(f"{45000 - i}.5", "1.00000000") for i in range(30)]
    asks = [(f"{45100 + i}.5", "0.20000000") for i in range(30)]
    reference = ReferenceBook(bids, asks)  # keeps 25 per side, as Kraken does
    keeper = _keeper()
    snapshot = _update(_v2_book("snapshot", bids, asks, reference.checksum()))
    assert snapshot.depth_limit == 25  # v2 frames do not say: the depth ingest subscribes
    keeper.apply(snapshot)
    book = keeper.book("BTC-USD")
    assert (len(book.bids), len(book.asks)) == (25, 25)
    # Two best asks leave: Kraken sends no level 26, the 11th and 12th move into the top 10.
    reference.set("a", "45100.5", "0")
    reference.set("a", "45101.5", "0")
    frame = _v2_book("update", [], [("45100.5", "0"), ("45101.5", "0")], reference.checksum(),
                     "2023-10-06T17:35:55Z")  # fmt: skip
    assert not keeper.apply(_update(frame)).checksum_failed
    assert len(book.asks) == 23


# --- v1 book: snapshot, updates, checksum ----------------------------------------------------

V1_ASKS = [(f"0.{5005 + 5 * i:05d}", "0.00000500") for i in range(12)]  # 0.05005 ... 0.05060
V1_BIDS = [(f"0.{5000 - 5 * i:05d}", "0.00000500") for i in range(12)]  # 0.05000 ... 0.04945
T0 = 1582905486.493008


def _v1_levels(levels: list[tuple[str, str]], at: float, republish: bool = False) -> list[Any]:
    stamp = f"{at:.6f}"
    return [[price, qty, stamp, "r"] if republish else [price, qty, stamp] for price, qty in levels]


def _v1(*payload: object, channel: str = "book-25", pair: str = "XDG/USD") -> str:
    return _dumps([336, *payload, channel, pair])


def test_v1_book_snapshot_and_updates_verify_against_an_independent_checksum() -> None:
    reference = ReferenceBook(V1_BIDS, V1_ASKS)
    keeper = _keeper()
    snapshot = _map_one(_v1({"as": _v1_levels(V1_ASKS, T0), "bs": _v1_levels(V1_BIDS, T0)}))
    assert isinstance(snapshot, BookUpdate)
    assert (snapshot.symbol, snapshot.is_snapshot, snapshot.checksum) == ("DOGE-USD", True, None)
    assert snapshot.ts == RECV  # a snapshot says nothing of when it was taken
    assert snapshot.ask_texts == V1_ASKS
    assert keeper.apply(snapshot).books

    outcomes: list[BookOutcome] = []
    # 1: a new best ask; the asks dict alone carries the checksum.
    reference.set("a", "0.05003", "1.00000000")
    frame = _v1(
        {"a": _v1_levels([("0.05003", "1.00000000")], T0 + 1), "c": str(reference.checksum())}
    )
    outcomes.append(keeper.apply(_update(frame)))
    # 2: asks and bids as two objects in one frame, a republished level among them.
    reference.set("a", "0.05010", "0.25000000")
    reference.set("b", "0.05000", "0")
    reference.set("b", "0.04940", "3.00000000")
    frame = _v1(
        {"a": _v1_levels([("0.05010", "0.25000000")], T0 + 2)},
        {"b": _v1_levels([("0.05000", "0.00000000")], T0 + 2)
              + _v1_levels([("0.04940", "3.00000000")], T0 + 2.5, republish=True),
         "c": str(reference.checksum())},
    )  # fmt: skip
    update = _map_one(frame)
    assert isinstance(update, BookUpdate)
    assert update.asks == [(0.0501, 0.25)]
    assert update.bids == [(0.05, 0.0), (0.0494, 3.0)]
    assert update.ts == int(Decimal(f"{T0 + 2.5:.6f}") * S)  # its latest level's time
    outcomes.append(keeper.apply(update))
    # 3: two top asks leave, so levels 11 and 12 enter the checksummed top 10.
    reference.set("a", "0.05003", "0")
    reference.set("a", "0.05005", "0")
    levels = [("0.05003", "0.00000000"), ("0.05005", "0.00000000")]
    frame = _v1({"a": _v1_levels(levels, T0 + 3), "c": str(reference.checksum())})
    outcomes.append(keeper.apply(_update(frame)))
    assert not any(outcome.checksum_failed for outcome in outcomes)
    assert keeper.totals().checksum_failures == 0

    # A checksum that does not match the book: the keeper reports it and wants a snapshot.
    reference.set("b", "0.04995", "9.00000000")
    wrong = (reference.checksum() + 1) % 2**32
    frame = _v1({"b": _v1_levels([("0.04995", "9.00000000")], T0 + 4), "c": str(wrong)})
    failed = keeper.apply(_update(frame))
    assert failed.checksum_failed
    assert failed.needs_snapshot
    assert keeper.totals().checksum_failures == 1


@pytest.mark.parametrize("depth", [10, 25, 100, 1000])
def test_v1_book_frames_name_their_depth_in_the_channel_name(depth: int) -> None:
    channel = f"book-{depth}"
    levels = {"as": _v1_levels(V1_ASKS, T0), "bs": _v1_levels(V1_BIDS, T0)}
    snapshot = _update(_v1(levels, channel=channel))
    update = _update(_v1({"a": _v1_levels(V1_ASKS[:1], T0 + 1), "c": "1"}, channel=channel))
    assert (snapshot.depth_limit, update.depth_limit) == (depth, depth)


@pytest.mark.parametrize("depth", [10, 100])
def test_a_v1_capture_is_truncated_to_its_own_depth(depth: int) -> None:
    """A better level enters a full book: Kraken sends no removal for the level it pushes out
    of the depth, so the keeper must drop it, at the capture's depth and not the live one.
    The checksum (top 10) holds throughout; the published depth is what would be wrong."""
    count = min(depth, 40)  # a thin book-100 market has fewer levels than its depth
    bids = [(f"{45000 - i}.5", "1.00000000") for i in range(count)]
    asks = [(f"{45100 + i}.5", "0.20000000") for i in range(count)]
    reference = ReferenceBook(bids, asks, depth)
    keeper = _keeper()
    channel = f"book-{depth}"
    snapshot = _v1(
        {"as": _v1_levels(asks, T0), "bs": _v1_levels(bids, T0)}, channel=channel, pair="XBT/USD"
    )
    keeper.apply(_update(snapshot))
    reference.set("b", "45000.9", "2.00000000")
    reference.set("a", "45100.1", "3.00000000")
    update = _v1(
        {"a": _v1_levels([("45100.1", "3.00000000")], T0 + 1)},
        {"b": _v1_levels([("45000.9", "2.00000000")], T0 + 1), "c": str(reference.checksum())},
        channel=channel,
        pair="XBT/USD",
    )
    assert not keeper.apply(_update(update)).checksum_failed
    book = keeper.book("BTC-USD")
    expected = min(depth, count + 1)
    assert (len(book.bids), len(book.asks)) == (expected, expected)
    assert sorted(book.bids) == sorted(float(p) for p, _ in reference.ordered("b"))
    assert sorted(book.asks) == sorted(float(p) for p, _ in reference.ordered("a"))


def test_a_v1_book_channel_without_a_depth_keeps_the_default() -> None:
    frame = _v1({"as": _v1_levels(V1_ASKS, T0), "bs": _v1_levels(V1_BIDS, T0)}, channel="book")
    assert _update(frame).depth_limit is None


# --- v1 trades, ticker, candles --------------------------------------------------------------

V1_TRADE = (
    '[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""],'
    '["6060.00000","0.02455000","1534614057.324998","b","l",""]],"trade","XBT/USD"]'
)
V1_TICKER = (
    '[0,{"a":["5525.40000",1,"1.000"],"b":["5525.10000",1,"1.000"],"c":["5525.10000",'
    '"0.00398963"],"v":["2634.11501494","3591.17907851"],"p":["5631.44067","5653.78939"],'
    '"t":[11493,16267],"l":["5505.00000","5505.00000"],"h":["5783.00000","5783.00000"],'
    '"o":["5760.70000","5763.40000"]},"ticker","XBT/USD"]'
)


def test_v1_trades_are_taker_sided_with_deterministic_ids() -> None:
    first = map_frame(V1_TRADE, RECV)
    assert [(t.symbol, t.ts, t.price, t.size, t.side) for t in first if isinstance(t, Trade)] == [
        ("BTC-USD", 1534614057321597000, 5541.2, 0.15850568, "sell"),
        ("BTC-USD", 1534614057324998000, 6060.0, 0.02455, "buy"),
    ]
    for trade in first:
        assert_valid(trade, RECV)
    ids = [t.trade_id for t in first if isinstance(t, Trade)]
    assert len(set(ids)) == 2
    # Replaying the same frame (at another time) gives the same ids: the sinks deduplicate.
    again = map_frame(V1_TRADE, RECV + 5 * S)
    assert [t.trade_id for t in again if isinstance(t, Trade)] == ids
    # Identical values in another place of a frame are another trade.
    doubled = _dumps([0, [json.loads(V1_TRADE)[1][0]] * 2, "trade", "XBT/USD"])
    assert len({t.trade_id for t in map_frame(doubled, RECV) if isinstance(t, Trade)}) == 2


def test_v1_ticker_is_a_quote_stamped_on_receipt() -> None:
    assert _map_one(V1_TICKER) == Quote(
        "kraken", "BTC-USD", RECV, RECV, 5525.1, 1.0, 5525.4, 1.0, 5525.1
    )


@pytest.mark.parametrize(
    ("channel", "etime", "interval", "open_ts"),
    [
        ("ohlc-1", "1618678200.000000", "1m", 1618678140 * S),
        ("ohlc-5", "1542057360.435743", "5m", 1542057060435743000),  # the v1 documentation's
        ("ohlc-60", "1618678800.000000", "1h", 1618675200 * S),
    ],
)
def test_v1_ohlc_opens_one_interval_before_its_end(
    channel: str, etime: str, interval: str, open_ts: int
) -> None:
    payload = [
        "1542057314.748456", etime, "3586.70000", "3586.70000", "3586.60000", "3586.60000",
        "3586.68894", "0.03373000", 2,
    ]  # fmt: skip
    assert _map_one(_v1(payload, channel=channel, pair="XBT/USD")) == Candle(
        "kraken", "BTC-USD", interval, open_ts, 3586.7, 3586.7, 3586.6, 3586.6, 0.03373, 2, False
    )


# --- v2 trades, ticker, candles --------------------------------------------------------------

V2_TRADE = (
    '{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell",'
    '"price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,'
    '"timestamp":"2023-09-25T07:49:37.708706Z"},{"symbol":"MATIC/USD","side":"buy",'
    '"price":0.5118,"qty":12.5,"ord_type":"limit","trade_id":4665907,'
    '"timestamp":"2023-09-25T07:49:37.708706123Z"}]}'
)
V2_TICKER = {
    "symbol": "ALGO/USD", "bid": 0.10025, "bid_qty": 740.0, "ask": 0.10036,
    "ask_qty": 1361.44813783, "last": 0.10035, "volume": 997038.98383185, "vwap": 0.10148,
    "low": 0.09979, "high": 0.10285, "change": -0.00017, "change_pct": -0.17,
}  # fmt: skip
V2_OHLC = {
    "symbol": "MATIC/USD", "open": 0.5624, "high": 0.5628, "low": 0.5622, "close": 0.5626,
    "trades": 12, "volume": 1845.40955407, "vwap": 0.5625,
    "interval_begin": "2023-10-04T16:25:00.000000000Z", "interval": 1,
    "timestamp": "2023-10-04T16:26:00.000000Z",
}  # fmt: skip


def test_v2_trades_one_per_item() -> None:
    assert map_frame(V2_TRADE, RECV) == [
        Trade("kraken", "MATIC-USD", 1695628177708706000, RECV, "4665906", 0.5117, 40.0, "sell"),
        Trade("kraken", "MATIC-USD", 1695628177708706123, RECV, "4665907", 0.5118, 12.5, "buy"),
    ]


@pytest.mark.parametrize(
    ("extra", "ts"),
    [({}, RECV), ({"timestamp": "2023-10-06T17:35:55.440295Z"}, 1696613755440295000)],
)
def test_v2_ticker_uses_its_timestamp_when_it_has_one(extra: dict[str, str], ts: int) -> None:
    frame = _dumps({"channel": "ticker", "type": "update", "data": [{**V2_TICKER, **extra}]})
    assert _map_one(frame) == Quote(
        "kraken", "ALGO-USD", ts, RECV, 0.10025, 740.0, 0.10036, 1361.44813783, 0.10035
    )


@pytest.mark.parametrize(("minutes", "name"), [(1, "1m"), (15, "15m"), (60, "1h"), (1440, "1d")])
def test_v2_ohlc_is_never_closed(minutes: int, name: str) -> None:
    frame = _dumps(
        {"channel": "ohlc", "type": "update", "data": [{**V2_OHLC, "interval": minutes}]}
    )
    assert _map_one(frame) == Candle(
        "kraken", "MATIC-USD", name, 1696436700 * S, 0.5624, 0.5628, 0.5622, 0.5626,
        1845.40955407, 12, False,
    )  # fmt: skip


# --- symbols, control frames, malformed frames, purity ---------------------------------------


@pytest.mark.parametrize(
    ("native", "symbol"),
    [("XBT/USD", "BTC-USD"), ("XDG/EUR", "DOGE-EUR"), ("ETH/XBT", "ETH-BTC"),
     ("BTC/USD", "BTC-USD"), ("DOGE/USD", "DOGE-USD"), ("1INCH/EUR", "1INCH-EUR")],
)  # fmt: skip
def test_symbols(native: str, symbol: str) -> None:
    assert normalized_symbol(native) == symbol


def test_native_symbols_and_refused_configuration() -> None:
    assert native_symbol("BTC-USD") == "BTC/USD"
    assert make_mapper(["BTC-USD", "ETH-EUR"]) is map_frame
    with pytest.raises(ConfigError, match="perpetual"):
        make_mapper(["BTC-USD-PERP"])


@pytest.mark.parametrize(
    "frame",
    [
        '{"channel":"heartbeat"}',
        '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",'
        '"api_version":"v2","connection_id":12393906104898154338}]}',
        '{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"ALGO/USD"},'
        '"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}',
        '{"method":"subscribe","result":{"channel":"book","depth":25,"snapshot":true,'
        '"symbol":"BTC/USD"},"success":true,"time_in":"2023-09-25T09:04:31.742599Z",'
        '"time_out":"2023-09-25T09:04:31.742648Z"}',
        '{"method":"pong","req_id":7,"time_in":"2023-09-24T14:10:23.799685Z",'
        '"time_out":"2023-09-24T14:10:23.799703Z"}',
        '{"event":"heartbeat"}',
        '{"connectionID":8628615390848610000,"event":"systemStatus","status":"online",'
        '"version":"1.0.0"}',
        '{"channelID":10001,"channelName":"book-25","event":"subscriptionStatus",'
        '"pair":"XBT/EUR","status":"subscribed","subscription":{"depth":25,"name":"book"}}',
        '{"event":"pong","reqid":42}',
    ],
)
def test_control_frames_map_to_nothing(frame: str) -> None:
    assert map_frame(frame, RECV) == []
    assert map_frame(frame.encode(), RECV) == []


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "not JSON"),
        ('"text"', "expected a JSON object or array"),
        ('{"channel":"level3","data":[]}', "unknown channel 'level3'"),
        ('{"channel":["trade"]}', "unknown channel ['trade']"),
        ('{"hello":1}', "no channel, method or event"),
        ('{"channel":"trade","type":"update","data":{}}', "trade: data {} is not a list"),
        (V2_TRADE.replace('"sell"', '"short"'), "trade: side 'short' is not 'buy' or 'sell'"),
        (V2_TRADE.replace('"price":0.5117', '"price":"cheap"'), "trade: price 'cheap'"),
        (
            V2_TRADE.replace('"2023-09-25T07:49:37.708706Z"', '"yesterday"'),
            "trade: timestamp 'yesterday' is not an ISO-8601 UTC time",
        ),
        (V2_TRADE.replace('"MATIC/USD"', '"MATICUSD"', 1), "symbol 'MATICUSD' is not BASE/QUOTE"),
        (
            '{"channel":"ticker","type":"update","data":[{"symbol":"ALGO/USD","bid":0.1}]}',
            "ticker: field 'bid_qty' is missing",
        ),
        (
            '{"channel":"ohlc","type":"update","data":[{"symbol":"A/B","interval":0}]}',
            "ohlc: interval 0 is not a positive number",
        ),
        (
            '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":1}],'
            '"asks":[]}]}',
            "book: bids [{'price': '1'}] is not a list of {price, qty}",
        ),
        ('{"channel":"book","type":"delta","data":[]}', "book: type 'delta'"),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],'
            '"checksum":-5}]}',
            "book: checksum '-5' is not an unsigned 32-bit integer",
        ),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":NaN,'
            '"qty":1}],"asks":[]}]}',
            "not JSON",
        ),
        (
            '{"method":"subscribe","error":"Currency pair not supported","success":false,'
            '"symbol":"XXX/YYY"}',
            "subscribe failed: Currency pair not supported (XXX/YYY)",
        ),
        (
            '{"event":"subscriptionStatus","status":"error","errorMessage":"Subscription depth not '
            'supported","pair":"XBT/USD"}',
            "subscription refused: Subscription depth not supported",
        ),
        ('{"event":"error","errorMessage":"Malformed request"}', "error: Malformed request"),
        ('{"event":"flying"}', "unknown event 'flying'"),
        ('[0,"trade","XBT/USD"]', "is not [channelID, payload..., channelName, pair]"),
        ('[0,[],"spread","XBT/USD"]', "channelName 'spread' is not trade, ticker"),
        ('[0,[],[],"trade","XBT/USD"]', "v1 trade: expected one payload, got 2"),
        (V1_TRADE.replace('"s","l"', '"x","l"'), "v1 trade: side 'x' is not 'b' or 's'"),
        (V1_TRADE.replace('"1534614057.321597"', '"soon"'), "v1 trade: time 'soon'"),
        (V1_TRADE.replace('"5541.20000"', '"n/a"'), "v1 trade: price 'n/a'"),
        (V1_TICKER.replace('"b":["5525.10000",1,"1.000"]', '"b":[]'), "v1 ticker: b [] is not"),
        ('[0,["1","2","3"],"ohlc-1","XBT/USD"]', "v1 ohlc: payload"),
        (
            '[0,{"as":[["1.0","2.0"]]},"book-10","XBT/USD"]',
            "v1 book: as level ['1.0', '2.0'] is not [price, volume, timestamp]",
        ),
        ('[0,{"a":[["1.0","2.0","1.5"]],"c":12},"book-10","XBT/USD"]', "field 'c' = 12"),
        ('[0,{"x":[]},"book-10","XBT/USD"]', "v1 book: field 'x'"),
        ('[0,{"a":[]},"book-ten","XBT/USD"]', "channelName 'book-ten' is not book-N with N"),
        ('[0,{"a":[]},"book-0","XBT/USD"]', "channelName 'book-0' is not book-N with N"),
    ],
)
def test_malformed_frames_name_the_field_and_value(frame: str, reason: str) -> None:
    with pytest.raises(FrameError) as raised:
        map_frame(frame, RECV)
    assert str(raised.value).startswith("kraken: ")
    assert reason in str(raised.value)


def _v2(channel: str, item: dict[str, object], kind: str = "update") -> str:
    return orjson.dumps({"channel": channel, "type": kind, "data": [item]}).decode()


_BOOK_ITEM = '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",%s}]}'


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (V2_TRADE.replace('"side":"sell"', '"side":"short"'), "trade: side 'short' is not 'buy'"),
        (V2_TRADE.replace("0.5117", '"cheap"'), "trade: price 'cheap' is not a decimal number"),
        (V2_TRADE.replace('"2023-09-25T07:49:37.708706Z"', "1695628177"), "trade: timestamp 1"),
        (_v2("ticker", {**V2_TICKER, "ask": None}), "ticker: ask None is not a decimal number"),
        (_v2("ticker", {**V2_TICKER, "timestamp": "soon"}), "ticker: timestamp 'soon' is not an"),
        (_v2("ohlc", {**V2_OHLC, "trades": 12.0}), "ohlc: trades 12.0 is not an integer"),
        (_v2("ohlc", {**V2_OHLC, "interval": "1"}), "ohlc: interval '1' is not an integer"),
        (_v2("ohlc", {**V2_OHLC, "symbol": "MATICUSD"}), "symbol 'MATICUSD' is not BASE/QUOTE"),
        (
            _BOOK_ITEM % '"bids":[{"price":1.5,"qty":true}],"asks":[]',
            "book: bids [{'price': '1.5', 'qty': True}] is not a list of {price, qty}",
        ),
        (
            _BOOK_ITEM % '"bids":[],"asks":[{"price":1.5}]',
            "book: asks [{'price': '1.5'}] is not a list of {price, qty}",
        ),
        (_BOOK_ITEM % '"bids":[],"asks":[],"checksum":1.5', "book: checksum '1.5' is not an"),
        (
            _BOOK_ITEM % '"bids":[],"asks":[],"timestamp":17',
            "book: timestamp '17' is not an ISO-8601 UTC time",
        ),
    ],
)
def test_a_message_its_struct_refuses_is_explained_field_by_field(frame: str, reason: str) -> None:
    """v2 data messages decode into Structs first; one whose field has the wrong type is read
    again as JSON, which names the field, its value and what was expected."""
    with pytest.raises(FrameError) as raised:
        map_frame(frame, RECV)
    assert str(raised.value).startswith("kraken: ")
    assert reason in str(raised.value)


def test_a_level_sent_as_a_string_keeps_its_text() -> None:
    """The JSON path reads a quoted level's text as it is; so does the mapper."""
    frame = _BOOK_ITEM % '"bids":[{"price":"45283.50","qty":0.10000000}],"asks":[]'
    update = _update(frame)
    assert update.bids == [(45283.5, 0.1)]
    assert update.bid_texts == [("45283.50", "0.10000000")]


def test_the_mapper_is_pure() -> None:
    frames = [V1_TRADE, V1_TICKER, V2_TRADE, _v2_book("snapshot", DOC_BIDS, DOC_ASKS, 1)]
    for frame in frames:
        assert map_frame(frame, RECV) == map_frame(frame, RECV)
        assert map_frame(frame.encode(), RECV) == map_frame(frame, RECV)


# --- the exchange's rules --------------------------------------------------------------------


def test_registered_with_its_rules() -> None:
    assert VENUES["kraken"] is KRAKEN
    assert get_venue("kraken") is KRAKEN
    assert KRAKEN.sequencing is Sequencing.NONE
    assert KRAKEN.channels == {"trades", "quotes", "candles", "books"}
    assert KRAKEN.connect_url(
        "wss://ws.kraken.com/v2", Subscription(("BTC-USD",), ("trades",))
    ) == ("wss://ws.kraken.com/v2")
    assert orjson.loads(KRAKEN.ping_message or "") == {"method": "ping"}
    assert 0 < KRAKEN.ping_interval_s < 60
    rules = KRAKEN.book_rules
    assert (rules.checksum, rules.checksum_depth, rules.depth_limit) == (checksum, 10, 25)
    assert KRAKEN.snapshot_requests is None
    assert KRAKEN.split is None


def test_subscribe_messages_one_per_channel() -> None:
    subscription = Subscription(("BTC-USD", "ETH-EUR"), ("trades", "quotes", "candles", "books"))
    symbols = ["BTC/USD", "ETH/EUR"]
    assert [orjson.loads(m) for m in KRAKEN.subscribe_messages(subscription)] == [
        {"method": "subscribe", "params": {"channel": "book", "symbol": symbols, "depth": 25}},
        {"method": "subscribe", "params": {"channel": "trade", "symbol": symbols}},
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": symbols, "event_trigger": "bbo"},
        },
        {"method": "subscribe", "params": {"channel": "ohlc", "symbol": symbols, "interval": 1}},
    ]  # books first: one request a second, and the book snapshot matters most
    with pytest.raises(ConfigError, match="channel 'funding' is not offered"):
        KRAKEN.subscribe_messages(Subscription(("BTC-USD",), ("funding",)))


def test_resubscribing_a_book_asks_for_a_fresh_snapshot() -> None:
    assert KRAKEN.resubscribe_book is not None
    params = {"channel": "book", "symbol": ["XRP/EUR"], "depth": 25}
    assert [orjson.loads(m) for m in KRAKEN.resubscribe_book("XRP-EUR")] == [
        {"method": "unsubscribe", "params": params},
        {"method": "subscribe", "params": params},
    ]
