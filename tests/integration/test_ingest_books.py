"""Binance USD-M order books from REST snapshots + real depth deltas, through a forced gap.

The 2021 recording holds deltas only, so the test adds one REST snapshot per symbol (as
`marketstream record` writes them) that bridges the first delta, removes one real delta to
force a sequence gap, and records a fresher snapshot after it: ingest must count the gap in
/metrics, fetch a snapshot again and publish books after the resync.
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import orjson
import pytest
import redis.asyncio

from marketstream.ingest.service import IngestService
from marketstream.replay.recording_format import RecordedFrame, read_recording
from marketstream.replay.server import ReplayServer
from marketstream.schemas.codec import decode_entry
from marketstream.schemas.records import Book
from marketstream.tiers.redis_bus import DLQ_STREAM, read_range
from marketstream.venues.registry import DIALECTS
from tests.integration.test_ingest_replay import _url, config_for

pytestmark = pytest.mark.integration

REST = "https://fapi.binance.com/fapi/v1/depth?symbol={}&limit=1000"
GAP_SYMBOL = "SUSHIUSDT"
WAIT_S = 120.0


def _depth(frame: RecordedFrame) -> dict[str, object] | None:
    data = orjson.loads(frame.frame).get("data", {})
    return data if data.get("e") == "depthUpdate" else None


def _snapshot(before: RecordedFrame, delta: dict[str, object]) -> RecordedFrame:
    """An (empty) REST snapshot taken just as `delta` happened, bridging it."""
    symbol = delta["s"]
    body = {"lastUpdateId": delta["U"], "E": delta["E"], "T": delta["T"], "bids": [], "asks": []}
    return RecordedFrame(
        before.recv_ns - 1, before.exchange, REST.format(symbol), orjson.dumps(body).decode()
    )


def recording_with_gap(source: Path, target: Path) -> tuple[Path, int]:
    """The recording plus bridging snapshots, minus one delta; returns the gap's exchange ts."""
    frames = list(read_recording(source))
    sushi = [i for i, f in enumerate(frames) if (d := _depth(f)) and d["s"] == GAP_SYMBOL]
    removed = sushi[2 * len(sushi) // 3]
    after_gap = frames[sushi[2 * len(sushi) // 3 + 1]]
    after_gap_data = _depth(after_gap)
    assert after_gap_data is not None
    out: list[RecordedFrame] = []
    seen: set[object] = set()
    for i, frame in enumerate(frames):
        data = _depth(frame)
        if data is not None and data["s"] not in seen:
            seen.add(data["s"])
            out.append(_snapshot(frame, data))
        if i == removed:
            continue
        out.append(frame)
        if frame is after_gap:  # a snapshot taken after the gap, bridging the next delta
            out.append(_snapshot(frame, after_gap_data))
            out[-1] = RecordedFrame(
                frame.recv_ns + 1, *(out[-1].exchange, out[-1].url, out[-1].frame)
            )
    target.write_bytes(b"".join(f.to_json_line() for f in out))
    return target, int(str(after_gap_data["T"])) * 1_000_000


async def metric(port: int, name: str, symbol: str) -> float:
    """Read one series from /metrics as Prometheus would (in a thread: the loop serves it)."""
    return await asyncio.to_thread(_scrape, port, name, symbol)


def _scrape(port: int, name: str, symbol: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    prefix = f'{name}{{exchange="binance-usdm",symbol="{symbol}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else 0.0


async def test_gap_is_counted_and_the_book_resyncs(
    recordings: Path, client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    recording, gap_ts = recording_with_gap(
        recordings / "binance-usdm.jsonl", tmp_path / "binance-usdm.jsonl"
    )
    symbols = ["SUSHI-USDT-PERP", "AKRO-USDT-PERP", "KEEP-USDT-PERP", "CTK-USDT-PERP"]
    # ~10 s, the gap two thirds in. Each book must be synced from the first snapshot before
    # the gap: fetched at once (no pause between snapshots), well ahead of the gap even on a
    # loaded machine. A snapshot fetched after the bridging one would sync past the gap unseen.
    async with ReplayServer(recording, DIALECTS, speed=3.0) as server:
        config = config_for("binance-usdm", server, symbols)
        config = config.model_copy(
            update={"ingest": config.ingest.model_copy(update={"snapshot_interval_s": 0.0})}
        )
        service = IngestService(config, redis_url=_url(client))
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop, metrics_port=0))
        try:
            async with asyncio.timeout(WAIT_S):
                while True:
                    await asyncio.sleep(0.1)
                    if not server.finished.is_set() or service.metrics_port is None:
                        continue
                    resyncs = await metric(
                        service.metrics_port,
                        "marketstream_ingest_book_resyncs_total",
                        "SUSHI-USDT-PERP",
                    )
                    if resyncs >= 1:
                        break
            port = service.metrics_port
            assert port is not None
            gaps = await metric(port, "marketstream_ingest_book_gaps_total", "SUSHI-USDT-PERP")
            other_gaps = await metric(port, "marketstream_ingest_book_gaps_total", "CTK-USDT-PERP")
            await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=WAIT_S)

    assert gaps >= 1
    assert other_gaps == 0  # the other books follow their pu chain without a break
    books = [
        record
        for _, fields in await read_range(client, "md:{binance-usdm}:books")
        if isinstance(record := decode_entry(fields), Book)
    ]
    sushi = [b for b in books if b.symbol == "SUSHI-USDT-PERP"]
    assert any(b.ts < gap_ts for b in sushi)
    assert any(b.ts >= gap_ts for b in sushi)  # published again after the resync
    assert {b.symbol for b in books} == set(symbols)
    dead = [fields[b"reason"] for _, fields in await read_range(client, DLQ_STREAM)]
    assert dead == []
