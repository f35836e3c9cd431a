"""`record` against the replay server: what is captured is what was served."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from marketstream.config import PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.ingest.recorder import record, resolve_target
from marketstream.ingest.recording import RecordedFrame, RecordingWriter, read_recording
from marketstream.ingest.replay import ReplayServer
from marketstream.ingest.replay_source import scan_recording
from tests.replay.helpers import WAIT_S, frames_of, message_of, wait_until

USDM_SYMBOLS = ["SUSHI-USDT-PERP", "AKRO-USDT-PERP", "KEEP-USDT-PERP", "CTK-USDT-PERP"]


def no_config() -> PipelineConfig:
    raise AssertionError("everything was given: the configuration must not be read")


def with_snapshots(usdm: Path, out: Path) -> list[RecordedFrame]:
    """The usdm recording plus one REST depth snapshot per symbol, as our recorder writes."""
    frames = frames_of(usdm)
    snapshots = [
        RecordedFrame(
            frames[0].recv_ns,
            "binance-usdm",
            f"https://fapi.binance.com/fapi/v1/depth?symbol={native}&limit=1000",
            f'{{"lastUpdateId":{i},"bids":[["1.0","2"]],"asks":[]}}',
        )
        for i, native in enumerate(("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"))
    ]
    with RecordingWriter(out) as writer:
        for frame in [*snapshots, *frames]:
            writer.write(frame)
    return snapshots


async def test_record_then_replay_round_trip(usdm: Path, tmp_path: Path) -> None:
    snapshots = with_snapshots(usdm, tmp_path / "served.jsonl")
    served = [f.frame for f in frames_of(usdm)]
    warnings: list[str] = []
    async with ReplayServer(tmp_path / "served.jsonl", max_speed=True) as server:
        target = resolve_target(
            "binance-usdm",
            url=server.ws_url,
            rest_url=server.http_url,
            symbols=USDM_SYMBOLS,
            channels=["trades", "quotes", "candles", "books"],
            load_config=no_config,
        )
        answers = len(target.exchange.subscribe_messages(target.subscription))
        out = tmp_path / "captured.jsonl"
        stats = await asyncio.wait_for(
            record(target, out, max_frames=len(served) + answers, warn=warnings.append), WAIT_S
        )
        assert server.finished.is_set()
    captured = list(read_recording(out))
    websocket = [f for f in captured if not f.is_rest]
    assert [f.frame for f in websocket[answers:]] == served
    assert [message_of(f.frame) for f in websocket[:answers]] == [{"result": None, "id": 1}]
    assert {f.url for f in websocket} == {server.ws_url}
    assert {f.exchange for f in captured} == {"binance-usdm"}
    rest = sorted((f for f in captured if f.is_rest), key=lambda f: f.url)
    assert [f.frame for f in rest] == [s.frame for s in sorted(snapshots, key=lambda s: s.url)]
    assert all(f.url.startswith(f"{server.http_url}/fapi/v1/depth?symbol=") for f in rest)
    assert (stats.frames, stats.snapshots, stats.connections) == (len(served) + answers, 4, 1)
    assert warnings == []
    replayable = scan_recording(out)  # the capture replays: its answers are not resent
    assert (replayable.total, replayable.ignored, len(replayable.rest)) == (len(served), 1, 4)


async def test_the_recorder_reconnects_and_misses_nothing(coinbase: Path, tmp_path: Path) -> None:
    products = {"SKL-USD", "DASH-BTC"}
    served = [
        f.frame
        for f in frames_of(coinbase)
        if message_of(f.frame)["type"] in {"match", "last_match", "ticker"}
        and message_of(f.frame)["product_id"] in products
    ]
    out = tmp_path / "captured.jsonl"
    stop = asyncio.Event()
    warnings: list[str] = []

    def captured() -> list[str]:
        frames = [f.frame for f in read_recording(out)] if out.exists() else []
        return [f for f in frames if message_of(f)["type"] != "subscriptions"]

    async with ReplayServer(coinbase, max_speed=True, drop_every=40) as server:
        target = resolve_target(
            "coinbase",
            url=server.ws_url,
            symbols=sorted(products),
            channels=["trades", "quotes"],
            load_config=no_config,
        )
        recording = asyncio.create_task(record(target, out, stop=stop, warn=warnings.append))
        await wait_until(server.finished.is_set)
        await wait_until(lambda: len(captured()) >= len(served))  # flushed within a second
        stop.set()
        stats = await asyncio.wait_for(recording, WAIT_S)
    assert captured() == served
    assert stats.connections == len(served) // 40 + 1
    assert len(warnings) == stats.connections - 1
    assert all("closed the connection (1001)" in w for w in warnings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_unreachable_feed_is_one_clear_error(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    target = resolve_target(
        "coinbase", url=url, symbols=["BTC-USD"], channels=["trades"], load_config=no_config
    )
    with pytest.raises(MarketStreamError, match=f"^cannot connect to {url}: "):
        await asyncio.wait_for(record(target, tmp_path / "r.jsonl"), WAIT_S)


@pytest.mark.parametrize(
    ("name", "symbols", "channels", "message"),
    [
        ("nasdaq", ["BTC-USD"], ["trades"], "unknown exchange 'nasdaq'"),
        ("coinbase", ["btc-usd"], ["trades"], "not normalized"),
        ("coinbase", ["BTC-USD"], ["funding"], "channel 'funding' is not offered"),
        ("binance-usdm", ["BTC-USDT"], ["trades"], "BTC-USDT"),
    ],
)
def test_bad_targets_are_refused(
    name: str, symbols: list[str], channels: list[str], message: str
) -> None:
    with pytest.raises(MarketStreamError, match=message):
        resolve_target(
            name, url="ws://x", symbols=symbols, channels=channels, load_config=no_config
        )


def test_missing_values_come_from_the_configuration(shipped_config: PipelineConfig) -> None:
    target = resolve_target("binance", load_config=lambda: shipped_config)
    configured = shipped_config.exchanges["binance"]
    assert target.url == configured.url
    assert target.rest_url == configured.rest_url
    assert target.subscription.symbols == configured.symbols
    assert target.subscription.channels == configured.channels
