"""Each dialect's side of the subscribe protocol, without sockets."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from marketstream.replay.dialect import EVERYONE, Route
from marketstream.replay.recording_format import read_recording
from marketstream.venues.binance.replay import BinanceDialect
from marketstream.venues.coinbase.replay import CoinbaseDialect

BINANCE = BinanceDialect()
COINBASE = CoinbaseDialect()
WRAPPED = '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","p":"1.10"}}'


def answers(replies: list[str]) -> list[object]:
    return [orjson.loads(r) for r in replies]


@pytest.mark.parametrize(
    ("path", "accepted"),
    [("/stream", True), ("/stream?streams=a/b", True), ("/ws", True), ("/ws/a", True),
     ("/", False), ("/streams", False)],
)  # fmt: skip
def test_binance_paths(path: str, accepted: bool) -> None:
    assert BINANCE.accepts_path(path) is accepted


def test_binance_routes_by_stream_and_drops_recorded_answers() -> None:
    assert BINANCE.route(WRAPPED) == Route("btcusdt@aggtrade")
    assert BINANCE.route('{"result":null,"id":1}') is None
    assert BINANCE.route("{not json") == EVERYONE
    assert BINANCE.route('{"e":"aggTrade"}') == EVERYONE


def _decoded_route(frame: str) -> Route | None:
    """The route by decoding the whole frame, as the dialect's general path does."""
    message = orjson.loads(frame)
    return Route(message["stream"].lower())


def test_binance_reads_the_stream_without_decoding_as_decoding_would(usdm: Path) -> None:
    frames = [f.frame for f in read_recording(usdm) if not f.is_rest]
    routed = [(BINANCE.route(frame), frame) for frame in frames]
    assert all(route == _decoded_route(frame) for route, frame in routed if route is not None)
    assert {route for route, _ in routed if route is not None} > {Route("sushiusdt@aggtrade")}
    escaped = '{"stream":"btc\\u0055sdt@aggTrade","data":{}}'  # "btcUsdt@aggTrade", escaped
    assert BINANCE.route(escaped) == Route("btcusdt@aggtrade")
    # A frame that names its stream goes to that stream's subscribers even where its data
    # is malformed, as on the live feed; one that is not JSON from the start goes to everyone.
    assert BINANCE.route('{"stream":"btcusdt@aggTrade","data":{oops}') == Route("btcusdt@aggtrade")
    assert BINANCE.route('{"stream":"btcusdt@aggTrade"') == EVERYONE


def test_binance_subscribe_unsubscribe_and_list() -> None:
    session = BINANCE.open_session("/stream")
    assert not session.active
    replies = session.on_message(
        '{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","ethusdt@bookTicker"],"id":1}'
    )
    assert answers(replies) == [{"result": None, "id": 1}]
    assert session.active
    assert session.wants(BINANCE.route(WRAPPED) or EVERYONE)
    session.on_message('{"method":"UNSUBSCRIBE","params":["btcusdt@aggtrade"],"id":2}')
    assert not session.wants(Route("btcusdt@aggtrade"))
    listed = session.on_message('{"method":"LIST_SUBSCRIPTIONS","id":3}')
    assert answers(listed) == [{"result": ["ethusdt@bookTicker"], "id": 3}]


def test_binance_streams_in_the_url() -> None:
    session = BINANCE.open_session("/stream?streams=btcusdt@aggTrade/ethusdt@depth@100ms")
    assert session.wants(Route("ethusdt@depth@100ms"))
    assert session.render(WRAPPED) == WRAPPED
    raw = BINANCE.open_session("/ws/btcusdt@aggTrade")
    assert raw.wants(Route("btcusdt@aggtrade"))
    assert raw.render(WRAPPED) == '{"e":"aggTrade","p":"1.10"}'


@pytest.mark.parametrize(
    ("request_text", "code", "request_id"),
    [
        ("{not json", 3, None),
        ('{"method":"FLY","id":4}', 2, 4),
        ('{"method":"SUBSCRIBE","params":"btcusdt@aggTrade","id":5}', 2, 5),
        ('{"method":"SUBSCRIBE","params":[],"id":true}', 2, None),
    ],
)
def test_binance_bad_requests_are_answered(request_text: str, code: int, request_id: int) -> None:
    [reply] = answers(BINANCE.open_session("/stream").on_message(request_text))
    assert isinstance(reply, dict)
    assert reply["error"]["code"] == code
    assert reply["id"] == request_id


def test_coinbase_routes_types_to_channels() -> None:
    match = COINBASE.route('{"type":"match","product_id":"BTC-USD"}')
    assert match == Route("BTC-USD", frozenset({"matches", "full"}))
    assert COINBASE.route('{"type":"subscriptions","channels":[]}') is None
    assert COINBASE.route('{"type":"mystery","product_id":"BTC-USD"}') == EVERYONE


def test_coinbase_subscribe_forms_and_answer() -> None:
    session = COINBASE.open_session("/")
    request = {
        "type": "subscribe",
        "product_ids": ["BTC-USD"],
        "channels": ["matches", {"name": "ticker", "product_ids": ["ETH-USD"]}],
    }
    [reply] = answers(session.on_message(orjson.dumps(request).decode()))
    assert reply == {
        "type": "subscriptions",
        "channels": [
            {"name": "matches", "product_ids": ["BTC-USD"]},
            {"name": "ticker", "product_ids": ["ETH-USD"]},
        ],
    }
    assert session.wants(Route("BTC-USD", frozenset({"matches", "full"})))
    assert not session.wants(Route("ETH-USD", frozenset({"matches", "full"})))
    assert session.wants(Route("ETH-USD", frozenset({"ticker", "ticker_batch"})))
    session.on_message('{"type":"unsubscribe","channels":["matches"]}')
    assert not session.wants(Route("BTC-USD", frozenset({"matches"})))
    assert session.active


@pytest.mark.parametrize(
    "request_text",
    [
        "[]",
        '{"type":"subscribe","product_ids":["BTC-USD"],"channels":["nonsense"]}',
        '{"type":"subscribe","channels":["matches"]}',
        '{"type":"subscribe","product_ids":["BTC-USD"],"channels":[]}',
        '{"type":"hello"}',
    ],
)
def test_coinbase_bad_requests_are_answered_with_an_error(request_text: str) -> None:
    session = COINBASE.open_session("/")
    [reply] = answers(session.on_message(request_text))
    assert isinstance(reply, dict)
    assert reply["type"] == "error"
    assert not session.active
