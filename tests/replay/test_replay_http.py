"""Plain HTTP on the replay port: control requests and recorded REST snapshots."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from marketstream.errors import MarketStreamError
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter
from marketstream.replay.server import ReplayServer
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import frames_of, http_get, receive, receive_until_closed, wait_until

DEPTH = "https://fapi.binance.com/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000"


async def test_status_reports_progress(usdm: Path) -> None:
    async with ReplayServer(usdm, DIALECTS, max_speed=True) as server:
        status, content_type, body = await http_get(f"{server.http_url}/_control/status")
        assert (status, content_type) == (200, "application/json")
        assert orjson.loads(body) == {
            "exchange": "binance-usdm",
            "recording": str(usdm),
            "sent": 0,
            "skipped": 0,
            "messages": 0,
            "total": 1535,
            "ignored": 0,
            "connections": 0,
            "finished": False,
        }


async def test_drop_closes_live_connections(usdm: Path) -> None:
    async with ReplayServer(usdm, DIALECTS, speed=1.0) as server:  # 30 s of feed: live when dropped
        async with connect(f"{server.ws_url}?streams=sushiusdt@bookTicker") as ws:
            await receive(ws)
            status, _, body = await http_get(f"{server.http_url}/_control/drop")
            assert status == 200
            assert orjson.loads(body) == {"dropped": 1}
            await receive_until_closed(ws, [])
            assert ws.close_code == 1001
        await wait_until(lambda: server.status()["connections"] == 0)
        assert not server.finished.is_set()


def write(path: Path, frames: list[RecordedFrame]) -> Path:
    with RecordingWriter(path) as writer:
        for frame in frames:
            writer.write(frame)
    return path


async def test_rest_snapshots_are_served_by_path_and_query(usdm: Path, tmp_path: Path) -> None:
    ws_frames = frames_of(usdm)[:3]
    first, later = '{"lastUpdateId":1,"bids":[],"asks":[]}', '{"lastUpdateId":2}'
    start, end = ws_frames[0].recv_ns, ws_frames[-1].recv_ns
    recording = write(
        tmp_path / "r.jsonl",
        [
            RecordedFrame(start, "binance-usdm", DEPTH, first),
            *ws_frames,
            RecordedFrame(end, "binance-usdm", DEPTH, later),
        ],
    )
    async with ReplayServer(recording, DIALECTS, max_speed=True) as server:
        assert server.total == 3  # the REST lines are not WebSocket frames
        target = f"{server.http_url}/fapi/v1/depth?limit=1000&symbol=SUSHIUSDT"  # any order
        assert await http_get(target) == (200, "application/json", first.encode())
        missing = await http_get(f"{server.http_url}/fapi/v1/depth?symbol=ETHUSDT&limit=1000")
        assert missing[0] == 404
        assert "ETHUSDT" in orjson.loads(missing[2])["error"]
        streams = "/".join(orjson.loads(f.frame)["stream"] for f in ws_frames)
        async with connect(f"{server.ws_url}?streams={streams}") as ws:
            got = [await receive(ws) for _ in ws_frames]
            await wait_until(server.finished.is_set)
        assert got == [f.frame for f in ws_frames]
        # once the replay passed the time of the later snapshot, that one is served
        assert (await http_get(target))[2] == later.encode()


async def test_a_websocket_to_an_unknown_path_is_refused(usdm: Path) -> None:
    async with ReplayServer(usdm, DIALECTS, max_speed=True) as server:
        with pytest.raises(InvalidStatus, match="404"):
            async with connect(f"ws://127.0.0.1:{server.port}/nope"):
                pass


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no frames"),
        (b'{"recv_ns":1,"exchange":"ftx","url":"wss://x","frame":"{}"}\n', "'ftx' cannot be"),
        (
            b'{"recv_ns":1,"exchange":"coinbase","url":"wss://x","frame":"{}"}\n'
            b'{"recv_ns":2,"exchange":"binance","url":"wss://x","frame":"{}"}\n',
            "line 2: exchange 'binance' after 'coinbase'",
        ),
        (b'{"recv_ns":1,"exchange":"coinbase"}\n', "line 1: expected a JSON object"),
    ],
)
async def test_a_recording_it_cannot_serve_fails_at_start(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(MarketStreamError, match=message):
        async with ReplayServer(path, DIALECTS):
            pass


async def test_a_port_in_use_is_one_clear_error(usdm: Path) -> None:
    async with ReplayServer(usdm, DIALECTS) as first:
        with pytest.raises(MarketStreamError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            async with ReplayServer(usdm, DIALECTS, port=first.port):
                pass
