"""The replay server speaking Bybit's v5 public protocol on `/v5/public/spot` and `/linear`.

The recording is written here from Bybit's documented formats (no public v5 capture is
usable): frames recorded from both endpoints, with the answers to subscribe and ping that a
capture holds and that the server never replays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from marketstream.replay.dialect import EVERYONE, Route
from marketstream.replay.recording_format import RecordedFrame
from marketstream.replay.server import ReplayServer
from marketstream.schemas.records import Candle, Funding, Quote
from marketstream.venues.base.mapper import BookUpdate
from marketstream.venues.base.venue import Subscription
from marketstream.venues.bybit.replay import BybitDialect
from marketstream.venues.bybit.venue import BYBIT
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import message_of, receive, receive_n, wait_until
from tests.venues.bybit.instruments import INSTRUMENTS

SPOT_URL = "wss://stream.bybit.com/v5/public/spot"
LINEAR_URL = "wss://stream.bybit.com/v5/public/linear"
T0 = 1_672_304_486_000  # ms
DIALECT = BybitDialect()


def _trade(price: str, ms: int) -> dict[str, Any]:
    return {
        "topic": "publicTrade.BTCUSDT",
        "type": "snapshot",
        "ts": ms,
        "data": [{"T": ms, "s": "BTCUSDT", "S": "Buy", "v": "0.01", "p": price, "i": f"t{ms}"}],
    }


def _book(kind: str, topic: str, u: int, ms: int) -> dict[str, Any]:
    data = {"s": "BTCUSDT", "b": [["16493.50", "0.006"]], "a": [["16611.00", "0.029"]], "u": u}
    return {"topic": topic, "type": kind, "ts": ms, "data": {**data, "seq": u}, "cts": ms}


KLINE = {
    "topic": "kline.1.BTCUSDT",
    "type": "snapshot",
    "ts": T0 + 3,
    "data": [
        {
            "start": 1672304460000, "end": 1672304519999, "interval": "1", "open": "16649.5",
            "close": "16677", "high": "16677", "low": "16608", "volume": "2.081",
            "turnover": "34666.4005", "confirm": False, "timestamp": T0 + 3,
        }
    ],
}  # fmt: skip
TICKER = {
    "topic": "tickers.BTCUSDT",
    "type": "snapshot",
    "ts": T0 + 5,
    "cs": 24987956059,
    "data": {
        "symbol": "BTCUSDT", "markPrice": "17217.33", "indexPrice": "17227.36",
        "nextFundingTime": "1673280000000", "fundingRate": "-0.000212",
    },
}  # fmt: skip
SPOT_ACK = {"success": True, "ret_msg": "subscribe", "conn_id": "a1", "op": "subscribe"}
LINEAR_ACK = {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "b2"}
PONG = {"success": True, "ret_msg": "pong", "conn_id": "a1", "op": "ping"}

# (recorded URL, message) in receive order; publicTrade.BTCUSDT is on both endpoints.
RECORDED: list[tuple[str, dict[str, Any]]] = [
    (SPOT_URL, SPOT_ACK),
    (LINEAR_URL, LINEAR_ACK),
    (SPOT_URL, _trade("16578.50", T0)),
    (LINEAR_URL, _trade("16580.00", T0 + 1)),
    (SPOT_URL, _book("snapshot", "orderbook.1.BTCUSDT", 900, T0 + 2)),
    (SPOT_URL, KLINE),
    (LINEAR_URL, _book("snapshot", "orderbook.50.BTCUSDT", 70, T0 + 4)),
    (LINEAR_URL, TICKER),
    (SPOT_URL, PONG),
    (LINEAR_URL, _book("delta", "orderbook.50.BTCUSDT", 71, T0 + 6)),
    (SPOT_URL, _trade("16579.00", T0 + 7)),
    (LINEAR_URL, _trade("16581.00", T0 + 8)),
]
ANSWERS = 3  # acks and pongs the recording holds


def _text(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _expected(url: str, topics: set[str]) -> list[str]:
    return [_text(m) for u, m in RECORDED if u == url and m.get("topic") in topics]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "bybit.jsonl"
    path.write_bytes(
        b"".join(
            RecordedFrame(T0 * 1_000_000 + i, "bybit", url, _text(m)).to_json_line()
            for i, (url, m) in enumerate(RECORDED)
        )
    )
    return path


def _subscribe(topics: list[str], **extra: object) -> str:
    return _text({**extra, "op": "subscribe", "args": topics})


# --- over WebSocket --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "url", "ack"),
    [
        (Subscription(("BTC-USDT",), ("quotes", "candles")), SPOT_URL, SPOT_ACK),
        (Subscription(("BTC-USDT-PERP",), ("books", "funding")), LINEAR_URL, LINEAR_ACK),
    ],
)
async def test_a_market_connection_subscribes_the_bybit_way_and_gets_its_frames(
    recording: Path, part: Subscription, url: str, ack: dict[str, Any]
) -> None:
    """The exchange module's own URL and requests, answered as Bybit answers them."""
    (request,) = BYBIT.subscribe_messages(part)
    expected = _expected(url, set(orjson.loads(request)["args"]))
    async with ReplayServer(recording, DIALECTS, max_speed=True) as server:
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/v5/public"
        market = url.rpartition("/")[2]
        assert BYBIT.connect_url(server.ws_url, part) == f"{server.ws_url}/{market}"
        async with connect(BYBIT.connect_url(server.ws_url, part)) as ws:
            await ws.send(request)
            answer = message_of(await receive(ws))
            assert answer["success"] is True
            assert (answer["op"], answer["ret_msg"]) == ("subscribe", ack["ret_msg"])
            got = await receive_n(ws, len(expected))
            await wait_until(server.finished.is_set)
            assert server.sent == len(expected)
            assert server.status()["ignored"] == ANSWERS
    assert got == expected
    mapper = BYBIT.make_mapper(part.symbols, INSTRUMENTS)
    records = [item for frame in got for item in mapper(frame, T0 * 1_000_000 + 10**9)]
    kinds = {type(r) for r in records}
    assert kinds == ({Quote, Candle} if market == "spot" else {BookUpdate, Funding})
    assert {r.symbol for r in records} == set(part.symbols)


async def test_ping_limits_and_bad_requests_are_answered_and_the_connection_stays(
    recording: Path,
) -> None:
    server = ReplayServer(recording, DIALECTS, max_speed=True)
    async with server, connect(f"ws://127.0.0.1:{server.port}/v5/public/spot") as ws:
        await ws.send('{"req_id":"7","op":"ping"}')
        assert message_of(await receive(ws)) == {
            "success": True,
            "ret_msg": "pong",
            "conn_id": "replay-spot",
            "req_id": "7",
            "op": "ping",
        }
        eleven = [f"kline.1.C{n}USDT" for n in range(11)]
        await ws.send(_subscribe(eleven))
        refused = message_of(await receive(ws))
        assert refused["success"] is False
        assert "at most 10 args" in refused["ret_msg"]
        await ws.send("{not json")
        assert message_of(await receive(ws))["success"] is False
        await ws.send(_subscribe(["kline.1.BTCUSDT"], req_id="k"))
        assert message_of(await receive(ws))["req_id"] == "k"
        assert await receive(ws) == _text(KLINE)


async def test_only_market_endpoints_are_feeds(recording: Path) -> None:
    async with ReplayServer(recording, DIALECTS, max_speed=True) as server:
        for path in ("/v5/public", "/v5/public/option", "/"):
            with pytest.raises(InvalidStatus, match="404"):
                async with connect(f"ws://127.0.0.1:{server.port}{path}"):
                    pass


async def test_a_topic_on_both_endpoints_reaches_only_its_market(recording: Path) -> None:
    expected = _expected(SPOT_URL, {"publicTrade.BTCUSDT"})
    server = ReplayServer(recording, DIALECTS, max_speed=True)
    async with server, connect(f"ws://127.0.0.1:{server.port}/v5/public/spot") as ws:
        await ws.send(_subscribe(["publicTrade.BTCUSDT"]))
        await receive(ws)
        await wait_until(server.finished.is_set)
        assert server.sent == len(expected)
        got = await receive_n(ws, server.sent)
    assert got == expected


# --- the dialect without sockets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "accepted"),
    [("/v5/public/spot", True), ("/v5/public/linear/", True), ("/spot", True),
     ("/v5/public/linear?x=1", True), ("/v5/public", False), ("/v5/public/option", False)],
)  # fmt: skip
def test_paths(path: str, accepted: bool) -> None:
    assert DIALECT.accepts_path(path) is accepted


def test_frames_route_by_topic_and_recorded_market() -> None:
    trade = _text(_trade("1", T0))
    assert DIALECT.route(trade, SPOT_URL) == Route("publicTrade.BTCUSDT", frozenset({"spot"}))
    assert DIALECT.route(trade, LINEAR_URL) == Route("publicTrade.BTCUSDT", frozenset({"linear"}))
    assert DIALECT.route(trade) == Route(
        "publicTrade.BTCUSDT", frozenset({"spot", "linear", "inverse"})
    )
    inverse = "wss://stream.bybit.com/v5/public/inverse"
    assert DIALECT.route(trade, inverse) == Route("publicTrade.BTCUSDT", frozenset({"inverse"}))
    for answer in (SPOT_ACK, LINEAR_ACK, PONG, {"op": "pong", "args": ["1"]}):
        assert DIALECT.route(_text(answer), SPOT_URL) is None
    assert DIALECT.route("{not json") == EVERYONE
    assert DIALECT.route('{"data":[]}') == EVERYONE


def test_a_session_wants_its_topics_on_its_own_market_only() -> None:
    session = DIALECT.open_session("/v5/public/linear")
    assert not session.active
    answers = session.on_message(_subscribe(["tickers.BTCUSDT", "publicTrade.BTCUSDT"]))
    assert [orjson.loads(a) for a in answers] == [
        {"success": True, "ret_msg": "", "conn_id": "replay-linear", "op": "subscribe"}
    ]
    assert session.active
    assert session.wants(Route("tickers.BTCUSDT", frozenset({"linear"})))
    assert session.wants(Route("tickers.BTCUSDT", frozenset({"spot", "linear"})))
    assert not session.wants(Route("publicTrade.BTCUSDT", frozenset({"spot"})))
    assert not session.wants(Route("kline.1.BTCUSDT", frozenset({"linear"})))
    session.on_message('{"op":"unsubscribe","args":["tickers.BTCUSDT"]}')
    assert not session.wants(Route("tickers.BTCUSDT", frozenset({"linear"})))
    assert session.render('{"x":1}') == '{"x":1}'


def test_linear_takes_more_than_10_args_per_request() -> None:
    session = DIALECT.open_session("/v5/public/linear")
    topics = [f"tickers.C{n}USDT" for n in range(11)]
    (answer,) = session.on_message(_subscribe(topics))
    assert orjson.loads(answer)["success"] is True


@pytest.mark.parametrize(
    "request_text",
    [
        "[]",
        '{"op":"fly"}',
        '{"op":"subscribe"}',
        '{"op":"subscribe","args":"publicTrade.BTCUSDT"}',
        '{"op":"subscribe","args":["BTCUSDT"]}',
        '{"op":"subscribe","args":[1]}',
    ],
)
def test_bad_requests_are_answered_with_a_failure(request_text: str) -> None:
    session = DIALECT.open_session("/v5/public/spot")
    (answer,) = session.on_message(request_text)
    reply = orjson.loads(answer)
    assert reply["success"] is False
    assert reply["ret_msg"]
    assert not session.active
