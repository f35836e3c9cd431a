"""The replay server speaking Binance's combined-stream protocol over the real recording."""

from __future__ import annotations

from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from marketstream.replay.server import ReplayServer
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import (
    frames_of,
    message_of,
    receive,
    receive_n,
    receive_until_closed,
    recorded_streams,
    stream_of,
    subscribe_binance,
    wait_until,
)


async def test_subscribing_to_every_stream_gets_the_whole_recording_in_order(usdm: Path) -> None:
    expected = [f.frame for f in frames_of(usdm)]
    async with ReplayServer(usdm, DIALECTS, max_speed=True) as server, connect(server.ws_url) as ws:
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/stream"
        await ws.send(subscribe_binance(recorded_streams(usdm), request_id=7))
        assert message_of(await receive(ws)) == {"result": None, "id": 7}
        got = await receive_n(ws, len(expected))
        await wait_until(server.finished.is_set)
        assert server.status()["sent"] == server.sent == len(expected) == 1535
    assert got == expected


async def test_a_subset_gets_only_its_streams(usdm: Path) -> None:
    wanted = ["sushiusdt@aggTrade", "ctkusdt@bookTicker"]
    expected = [f.frame for f in frames_of(usdm) if stream_of(f.frame) in wanted]
    async with ReplayServer(usdm, DIALECTS, max_speed=True) as server:
        url = f"{server.ws_url}?streams={'/'.join(wanted)}"  # subscribed by the URL alone
        async with connect(url) as ws:
            got = await receive_n(ws, len(expected))
            await wait_until(server.finished.is_set)
            assert server.sent == len(expected)
            assert server.skipped == server.total - len(expected)
    assert got == expected


async def test_the_server_declines_compression_the_client_offers(usdm: Path) -> None:
    """On loopback permessage-deflate only costs CPU on both sides: the client (ours, as it
    connects to a live exchange) offers it and the replay server must not take it up."""
    wanted = "sushiusdt@aggTrade"
    expected = [f.frame for f in frames_of(usdm) if stream_of(f.frame) == wanted]
    server = ReplayServer(usdm, DIALECTS, max_speed=True)
    async with server, connect(f"ws://127.0.0.1:{server.port}/stream?streams={wanted}") as ws:
        assert ws.request is not None
        assert ws.response is not None
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        assert await receive_n(ws, len(expected)) == expected


async def test_the_raw_endpoint_sends_payloads_unwrapped(usdm: Path) -> None:
    stream = "keepusdt@depth@100ms"
    expected = [
        orjson.loads(f.frame)["data"] for f in frames_of(usdm) if stream_of(f.frame) == stream
    ]
    server = ReplayServer(usdm, DIALECTS, max_speed=True)
    async with server, connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        await ws.send(subscribe_binance([stream]))
        await receive(ws)
        got = [orjson.loads(m) for m in await receive_n(ws, len(expected))]
    assert got == expected


async def test_control_messages_keep_the_connection(usdm: Path) -> None:
    async with ReplayServer(usdm, DIALECTS, max_speed=True) as server, connect(server.ws_url) as ws:
        await ws.send("{not json")
        assert message_of(await receive(ws))["error"]["code"] == 3
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        assert message_of(await receive(ws)) == {"result": [], "id": 2}
        await ws.send(subscribe_binance(["akrousdt@kline_1m"], request_id=3))
        assert message_of(await receive(ws)) == {"result": None, "id": 3}
        assert stream_of(await receive(ws)) == "akrousdt@kline_1m"
        await ws.send('{"method":"UNSUBSCRIBE","params":["akrousdt@kline_1m"],"id":4}')
        replies: list[
            dict[str, object]
        ] = []  # kline frames already on their way may precede the answer
        while not replies or "id" not in replies[-1]:
            replies.append(message_of(await receive(ws)))
        assert replies[-1] == {"result": None, "id": 4}


async def test_paced_replay_delivers_everything(usdm: Path) -> None:
    expected = [f.frame for f in frames_of(usdm)]
    streams = "/".join(recorded_streams(usdm))
    server = ReplayServer(usdm, DIALECTS, speed=1000.0)  # 30 s recorded, ~30 ms replayed
    async with server, connect(f"{server.ws_url}?streams={streams}") as ws:
        got = await receive_n(ws, len(expected))
    assert got == expected


async def test_reconnecting_clients_get_every_frame_exactly_once(usdm: Path) -> None:
    expected = [f.frame for f in frames_of(usdm)]
    got: list[str] = []
    connections = 0
    async with ReplayServer(usdm, DIALECTS, max_speed=True, drop_every=500) as server:
        while len(got) < len(expected):
            connections += 1
            async with connect(server.ws_url) as ws:
                await ws.send(subscribe_binance(recorded_streams(usdm)))
                assert message_of(await receive(ws)) == {"result": None, "id": 1}
                if connections < 4:
                    await receive_until_closed(ws, got)
                    assert ws.close_code == 1001
                else:  # the last 35 frames, then the server stays open and quiet
                    got.extend(await receive_n(ws, len(expected) - len(got)))
        await wait_until(server.finished.is_set)
    assert connections == 4
    assert got == expected
