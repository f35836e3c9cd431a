"""The replay server speaking the Coinbase Exchange feed protocol over the real recording."""

from __future__ import annotations

from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from marketstream.replay.server import ReplayServer
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import frames_of, message_of, receive, receive_n, wait_until


def recorded(path: Path, types: set[str], products: set[str]) -> list[str]:
    return [
        f.frame
        for f in frames_of(path)
        if message_of(f.frame)["type"] in types
        and message_of(f.frame).get("product_id") in products
    ]


async def test_matches_of_one_product(coinbase: Path) -> None:
    expected = recorded(coinbase, {"match", "last_match"}, {"SKL-USD"})
    assert len(expected) == 53  # 52 match + 1 last_match
    async with (
        ReplayServer(coinbase, DIALECTS, max_speed=True) as server,
        connect(server.ws_url) as ws,
    ):
        assert server.ws_url == f"ws://127.0.0.1:{server.port}"
        request = {"type": "subscribe", "product_ids": ["SKL-USD"], "channels": ["matches"]}
        await ws.send(orjson.dumps(request).decode())
        assert message_of(await receive(ws)) == {
            "type": "subscriptions",
            "channels": [{"name": "matches", "product_ids": ["SKL-USD"]}],
        }
        got = await receive_n(ws, len(expected))
        await wait_until(server.finished.is_set)
        assert server.sent == len(expected)
        assert server.status()["ignored"] == 3  # the recording's own `subscriptions` frames
    assert got == expected


async def test_channel_objects_and_books(coinbase: Path) -> None:
    expected = [
        f.frame
        for f in frames_of(coinbase)
        if (message_of(f.frame)["type"], message_of(f.frame).get("product_id"))
        in {("ticker", "DASH-BTC"), ("snapshot", "NU-GBP"), ("l2update", "NU-GBP")}
    ]
    request = {
        "type": "subscribe",
        "product_ids": ["NU-GBP"],
        "channels": ["level2_batch", {"name": "ticker", "product_ids": ["DASH-BTC"]}],
    }
    async with (
        ReplayServer(coinbase, DIALECTS, max_speed=True) as server,
        connect(server.ws_url) as ws,
    ):
        await ws.send(orjson.dumps(request).decode())
        assert message_of(await receive(ws))["type"] == "subscriptions"
        got = await receive_n(ws, len(expected))
        await wait_until(server.finished.is_set)
        assert server.sent == len(expected) == 16 + 1 + 76
    assert got == expected


async def test_a_bad_subscribe_is_answered_and_the_connection_stays(coinbase: Path) -> None:
    expected = recorded(coinbase, {"ticker"}, {"YFI-BTC"})
    async with (
        ReplayServer(coinbase, DIALECTS, max_speed=True) as server,
        connect(server.ws_url) as ws,
    ):
        await ws.send('{"type":"subscribe","product_ids":["YFI-BTC"],"channels":["bogus"]}')
        error = message_of(await receive(ws))
        assert error["type"] == "error"
        assert "bogus" in error["reason"]
        await ws.send('{"type":"subscribe","product_ids":["YFI-BTC"],"channels":["ticker"]}')
        assert message_of(await receive(ws))["type"] == "subscriptions"
        assert await receive_n(ws, len(expected)) == expected
