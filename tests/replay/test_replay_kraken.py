"""The replay server's Kraken dialect: v2 and v1 requests, v2 and v1 recordings, one endpoint.

The recordings are written here from documented frame formats (no Kraken capture ships with
the test data); the client subscribes the v2 way, as ingest does, and what it receives must
map and keep a book whose checksums verify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from marketstream.ingest.books import BookKeeper
from marketstream.replay.dialect import EVERYONE, Route
from marketstream.replay.recording_format import RecordedFrame
from marketstream.replay.server import ReplayServer
from marketstream.schemas.records import Trade
from marketstream.venues.base.mapper import BookUpdate, LevelText
from marketstream.venues.kraken.checksum import checksum
from marketstream.venues.kraken.mapper import map_frame
from marketstream.venues.kraken.replay import KrakenDialect, canonical_pair
from marketstream.venues.kraken.venue import KRAKEN
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import message_of, receive, receive_n, wait_until

DIALECT = KrakenDialect()
T0 = 1_700_000_000_000_000_000
V2_URL = "wss://ws.kraken.com/v2"
V1_URL = "wss://ws.kraken.com"


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def answers(replies: list[str]) -> list[dict[str, Any]]:
    """The replies without the wall-clock fields, which differ on every run."""
    out = []
    for reply in replies:
        message = message_of(reply)
        assert isinstance(message.pop("time_in", ""), str)
        assert isinstance(message.pop("time_out", ""), str)
        out.append(message)
    return out


def _book_checksum(bids: list[LevelText], asks: list[LevelText]) -> int:
    best_bids = sorted(bids, key=lambda level: float(level[0]), reverse=True)[:10]
    return checksum(best_bids, sorted(asks, key=lambda level: float(level[0]))[:10])


# --- recorded frames, written from the documented formats -------------------------------------

BIDS = [("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000")]
ASKS = [("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109")]


def _v2_levels(levels: list[LevelText]) -> str:
    return ",".join(f'{{"price":{price},"qty":{qty}}}' for price, qty in levels)


def _v2_book(kind: str, symbol: str, bids: list[LevelText], asks: list[LevelText], crc: int) -> str:
    stamp = ',"timestamp":"2023-10-06T17:35:55.440295Z"' if kind == "update" else ""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}",'
        f'"bids":[{_v2_levels(bids)}],"asks":[{_v2_levels(asks)}],"checksum":{crc}{stamp}}}]}}'
    )


def _v2_trade(symbol: str, trade_id: int) -> str:
    item = {
        "symbol": symbol, "side": "buy", "price": 0.5117, "qty": 40.0, "ord_type": "market",
        "trade_id": trade_id, "timestamp": "2023-09-25T07:49:37.708706Z",
    }  # fmt: skip
    return _dumps({"channel": "trade", "type": "update", "data": [item]})


V2_HEARTBEAT = '{"channel":"heartbeat"}'
V2_SNAPSHOT = _v2_book("snapshot", "BTC/USD", BIDS, ASKS, _book_checksum(BIDS, ASKS))
V2_UPDATE_1 = _v2_book(
    "update", "BTC/USD", [("45283.5", "0")], [],
    _book_checksum(BIDS[1:], ASKS),
)  # fmt: skip
V2_UPDATE_2 = _v2_book(
    "update", "BTC/USD", [], [("45285.1", "2.50000000")],
    _book_checksum(BIDS[1:], [("45285.1", "2.50000000"), *ASKS]),
)  # fmt: skip
V2_RECORDING = [
    '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",'
    '"api_version":"v2","connection_id":12393906104898154338}]}',
    '{"method":"subscribe","result":{"channel":"book","depth":25,"snapshot":true,'
    '"symbol":"BTC/USD"},"success":true,"time_in":"2023-10-06T17:35:54.1Z",'
    '"time_out":"2023-10-06T17:35:54.2Z"}',
    V2_HEARTBEAT,
    _v2_trade("BTC/USD", 1),
    V2_SNAPSHOT,
    _v2_trade("ETH/USD", 2),
    V2_UPDATE_1,
    _dumps({"channel": "ticker", "type": "update", "data": [{"symbol": "BTC/USD"}]}),
    _v2_trade("LTC/USD", 3),
    _v2_book("snapshot", "ETH/USD", BIDS, ASKS, 1),
    V2_HEARTBEAT,
    V2_UPDATE_2,
    '{"method":"pong","time_in":"2023-10-06T17:35:59.1Z","time_out":"2023-10-06T17:35:59.2Z"}',
]

V1_ASKS = [
    ["0.05005", "0.00000500", "1582905487.684110"],
    ["0.05010", "0.00500000", "1582905486.187983"],
]
V1_BIDS = [
    ["0.05000", "0.00000500", "1582905487.439814"],
    ["0.04995", "0.00000100", "1582905485.119396"],
]
V1_HEARTBEAT = '{"event":"heartbeat"}'
V1_SNAPSHOT = _dumps([336, {"as": V1_ASKS, "bs": V1_BIDS}, "book-25", "XBT/USD"])
V1_UPDATE = _dumps(
    [
        336,
        {"b": [["0.05000", "0.00000000", "1582905488.000001"]],
         "c": str(checksum([("0.04995", "0.00000100")], [(a[0], a[1]) for a in V1_ASKS]))},
        "book-25",
        "XBT/USD",
    ]
)  # fmt: skip
V1_TRADE = '[337,[["5541.20000","0.15850568","1534614057.321597","s","l",""]],"trade","XBT/USD"]'
V1_RECORDING = [
    '{"connectionID":8628615390848610000,"event":"systemStatus","status":"online","version":"1.9.0"}',
    '{"channelID":336,"channelName":"book-25","event":"subscriptionStatus","pair":"XBT/USD",'
    '"status":"subscribed","subscription":{"depth":25,"name":"book"}}',
    V1_HEARTBEAT,
    V1_SNAPSHOT,
    V1_TRADE,
    V1_UPDATE,
    _dumps([338, {"a": [["0.2", "1.0", "1582905488.1"]], "c": "1"}, "book-25", "XDG/USD"]),
    _dumps([339, ["1", "1542057360.0", "1", "1", "1", "1", "1", "1", 1], "ohlc-1", "XBT/USD"]),
    V1_HEARTBEAT,
    '{"event":"pong","reqid":1}',
]


def _record(path: Path, url: str, frames: list[str]) -> Path:
    with path.open("wb") as out:
        for number, frame in enumerate(frames):
            out.write(RecordedFrame(T0 + number * 1_000_000, "kraken", url, frame).to_json_line())
    return path


def _keep(frames: list[str]) -> BookKeeper:
    """Map every frame the client received and keep the books: nothing may fail."""
    keeper = BookKeeper("kraken", KRAKEN.book_rules, depth=10, interval_ns=1_000_000_000)
    for number, frame in enumerate(frames):
        for item in map_frame(frame, T0 + number):
            if isinstance(item, BookUpdate):
                outcome = keeper.apply(item)
                assert not outcome.checksum_failed
                assert not outcome.gap
    return keeper


def _v2_subscribe(channel: str, symbols: list[str], **params: object) -> str:
    request = {"method": "subscribe", "params": {"channel": channel, "symbol": symbols, **params}}
    return _dumps(request)


# --- over a socket ----------------------------------------------------------------------------


async def test_a_v2_book_subscription_gets_its_book_and_heartbeats(tmp_path: Path) -> None:
    recording = _record(tmp_path / "kraken-v2.jsonl", V2_URL, V2_RECORDING)
    expected = [V2_HEARTBEAT, V2_SNAPSHOT, V2_UPDATE_1, V2_HEARTBEAT, V2_UPDATE_2]
    async with (
        ReplayServer(recording, DIALECTS, max_speed=True) as server,
        connect(server.ws_url) as ws,
    ):
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/v2"
        await ws.send('{"method":"ping","req_id":9}')  # no subscription yet: nothing flows
        assert answers([await receive(ws)]) == [{"method": "pong", "req_id": 9}]
        await ws.send(_v2_subscribe("book", ["BTC/USD"], depth=25))
        assert answers([await receive(ws)]) == [
            {
                "method": "subscribe",
                "result": {"channel": "book", "depth": 25, "snapshot": True, "symbol": "BTC/USD"},
                "success": True,
            }
        ]
        got = await receive_n(ws, len(expected))
        await wait_until(server.finished.is_set)
        assert server.sent == len(expected)
        assert server.status()["ignored"] == 3  # the recorded status, answer and pong
        assert server.skipped == server.total - len(expected)
    assert got == expected
    book = _keep(got).book("BTC-USD")
    assert book.stats.emitted > 0
    assert (max(book.bids), min(book.asks)) == (45283.4, 45285.1)


async def test_v2_trades_of_two_symbols(tmp_path: Path) -> None:
    recording = _record(tmp_path / "kraken-v2.jsonl", V2_URL, V2_RECORDING)
    expected = [V2_HEARTBEAT, _v2_trade("BTC/USD", 1), _v2_trade("ETH/USD", 2), V2_HEARTBEAT]
    async with (
        ReplayServer(recording, DIALECTS, max_speed=True) as server,
        connect(server.ws_url) as ws,
    ):
        await ws.send(_v2_subscribe("trade", ["BTC/USD", "ETH/USD"]))
        replies = answers(await receive_n(ws, 2))
        assert [reply["result"]["symbol"] for reply in replies] == ["BTC/USD", "ETH/USD"]
        got = await receive_n(ws, len(expected))
        await wait_until(server.finished.is_set)
        assert server.sent == len(expected)
    assert got == expected
    trades = [item for frame in got for item in map_frame(frame, T0) if isinstance(item, Trade)]
    assert [trade.trade_id for trade in trades] == ["1", "2"]


async def test_a_v1_recording_serves_a_v2_subscription(tmp_path: Path) -> None:
    """XBT/USD frames reach a BTC/USD subscription: one instrument, two names."""
    recording = _record(tmp_path / "kraken-v1.jsonl", V1_URL, V1_RECORDING)
    expected = [V1_HEARTBEAT, V1_SNAPSHOT, V1_UPDATE, V1_HEARTBEAT]
    async with (
        ReplayServer(recording, DIALECTS, max_speed=True) as server,
        connect(server.ws_url) as ws,
    ):
        await ws.send(_v2_subscribe("book", ["BTC/USD"], depth=25))
        assert answers([await receive(ws)])[0]["success"] is True
        got = await receive_n(ws, len(expected))
        await wait_until(server.finished.is_set)
        assert server.sent == len(expected)
        assert server.status()["ignored"] == 3  # systemStatus, subscriptionStatus, pong
    assert got == expected
    assert _keep(got).book("BTC-USD").stats.emitted > 0


async def test_a_v1_client_on_the_v1_path(tmp_path: Path) -> None:
    recording = _record(tmp_path / "kraken-v1.jsonl", V1_URL, V1_RECORDING)
    server = ReplayServer(recording, DIALECTS, max_speed=True)
    async with server, connect(f"ws://127.0.0.1:{server.port}") as ws:
        request = {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "trade"}}
        await ws.send(_dumps({**request, "reqid": 4}))
        assert message_of(await receive(ws)) == {
            "channelID": 1,
            "channelName": "trade",
            "event": "subscriptionStatus",
            "pair": "XBT/USD",
            "status": "subscribed",
            "subscription": {"name": "trade"},
            "reqid": 4,
        }
        assert await receive_n(ws, 3) == [V1_HEARTBEAT, V1_TRADE, V1_HEARTBEAT]


# --- the dialect without sockets --------------------------------------------------------------


def test_registered() -> None:
    assert isinstance(DIALECTS["kraken"], KrakenDialect)


@pytest.mark.parametrize(
    ("path", "accepted"), [("/v2", True), ("/", True), ("", True), ("/v1", False), ("/ws", False)]
)
def test_paths(path: str, accepted: bool) -> None:
    assert DIALECT.accepts_path(path) is accepted


@pytest.mark.parametrize(
    ("frame", "route"),
    [
        (V2_SNAPSHOT, Route("BTC/USD", frozenset({"book"}))),
        (_v2_trade("ETH/USD", 1), Route("ETH/USD", frozenset({"trade"}))),
        ('{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD","interval":5}]}',
         Route("BTC/USD", frozenset({"ohlc-5"}))),
        (V1_SNAPSHOT, Route("BTC/USD", frozenset({"book"}))),
        (V1_TRADE, Route("BTC/USD", frozenset({"trade"}))),
        ('[1,[],"ohlc-1","XDG/XBT"]', Route("DOGE/BTC", frozenset({"ohlc-1"}))),
        (V2_HEARTBEAT, EVERYONE),
        (V1_HEARTBEAT, EVERYONE),
        (V2_RECORDING[0], None),  # status
        (V2_RECORDING[1], None),  # a subscribe answer
        (V1_RECORDING[0], None),  # systemStatus
        (V1_RECORDING[1], None),  # subscriptionStatus
        ("{not json", EVERYONE),
        ('{"channel":"trade","data":[]}', EVERYONE),
        ('[1,[],"orders","XBT/USD"]', EVERYONE),
    ],
)  # fmt: skip
def test_routes(frame: str, route: Route | None) -> None:
    assert DIALECT.route(frame) == route


def test_canonical_pairs() -> None:
    assert canonical_pair("XBT/USD") == canonical_pair("BTC/USD") == "BTC/USD"
    assert canonical_pair("ETH/XBT") == "ETH/BTC"
    assert canonical_pair("XDG/EUR") == "DOGE/EUR"


def test_v2_subscribe_and_unsubscribe() -> None:
    session = DIALECT.open_session("/v2")
    assert not session.active
    request = _v2_subscribe("ohlc", ["BTC/USD"], interval=1)
    assert answers(session.on_message(request[:-1] + ',"req_id":3}')) == [
        {
            "method": "subscribe",
            "result": {"channel": "ohlc", "interval": 1, "snapshot": True, "symbol": "BTC/USD"},
            "success": True,
            "req_id": 3,
        }
    ]
    assert session.wants(Route("BTC/USD", frozenset({"ohlc-1"})))
    assert not session.wants(Route("BTC/USD", frozenset({"ohlc-5"})))
    session.on_message(_v2_subscribe("ticker", ["XBT/USD"]))  # v1's name works too
    assert session.wants(Route("BTC/USD", frozenset({"ticker"})))
    unsubscribe = {"method": "unsubscribe", "params": {"channel": "ohlc", "symbol": ["BTC/USD"]}}
    [reply] = answers(session.on_message(_dumps(unsubscribe)))
    assert (reply["method"], reply["success"]) == ("unsubscribe", True)
    assert not session.wants(Route("BTC/USD", frozenset({"ohlc-1"})))
    assert session.active


def test_v1_subscribe_unsubscribe_and_ping() -> None:
    session = DIALECT.open_session("/")
    request = {"event": "subscribe", "pair": ["XBT/USD", "ETH/USD"],
               "subscription": {"name": "book", "depth": 100}}  # fmt: skip
    replies = [message_of(r) for r in session.on_message(_dumps(request))]
    assert [(r["channelName"], r["pair"], r["status"]) for r in replies] == [
        ("book-100", "XBT/USD", "subscribed"),
        ("book-100", "ETH/USD", "subscribed"),
    ]
    assert session.wants(Route("BTC/USD", frozenset({"book"})))
    request["event"] = "unsubscribe"
    request["pair"] = ["XBT/USD"]
    [reply] = [message_of(r) for r in session.on_message(_dumps(request))]
    assert reply["status"] == "unsubscribed"
    assert not session.wants(Route("BTC/USD", frozenset({"book"})))
    assert session.wants(Route("ETH/USD", frozenset({"book"})))
    assert [message_of(r) for r in session.on_message('{"event":"ping","reqid":42}')] == [
        {"event": "pong", "reqid": 42}
    ]


@pytest.mark.parametrize(
    ("request_text", "error"),
    [
        ("[]", "Malformed request"),
        ('{"hello":1}', "Malformed request"),
        ('{"method":"fly"}', "Method 'fly' not supported"),
        ('{"method":"subscribe","params":[]}', "params must be an object"),
        ('{"method":"subscribe","params":{"channel":"level9","symbol":["BTC/USD"]}}',
         "Channel 'level9' not supported"),
        ('{"method":"subscribe","params":{"channel":["book"],"symbol":["BTC/USD"]}}',
         "not supported"),
        ('{"method":"subscribe","params":{"channel":"book","symbol":"BTC/USD"}}',
         "symbol must be a non-empty list"),
    ],
)  # fmt: skip
def test_bad_v2_requests_are_answered(request_text: str, error: str) -> None:
    session = DIALECT.open_session("/v2")
    [reply] = answers(session.on_message(request_text))
    assert reply["success"] is False
    assert error in reply["error"]
    assert not session.active


@pytest.mark.parametrize(
    ("request_text", "error"),
    [
        ('{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"candles"}}',
         "Subscription name invalid"),
        ('{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":["book"]}}',
         "Subscription name invalid"),
        ('{"event":"subscribe","pair":[],"subscription":{"name":"book"}}', "Pair(s) not found"),
        ('{"event":"dance"}', "Unsupported event 'dance'"),
    ],
)  # fmt: skip
def test_bad_v1_requests_are_answered(request_text: str, error: str) -> None:
    session = DIALECT.open_session("/")
    [reply] = [message_of(r) for r in session.on_message(request_text)]
    assert reply["errorMessage"].startswith(error)
    assert not session.active
