"""Open interest polled over REST (`ingest/rest_polls.py`) against our replay server's REST
side and a real Redis: answers become records on `md:open_interest:<exchange>`, error answers
go to `md:dlq` with the reason, and a request that fails is retried and counted, never
dropped, until ingest stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio

from marketstream.config import IngestConfig, StreamsConfig
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.ingest.rest_polls import OpenInterestPoller
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter, read_recording
from marketstream.replay.server import ReplayServer
from marketstream.retry import Backoff
from marketstream.schemas.codec import decode_entry
from marketstream.schemas.records import Instrument, OpenInterest
from marketstream.tiers.redis_bus import DLQ_STREAM, read_range
from marketstream.venues.binance.venue import BINANCE_USDM
from marketstream.venues.registry import DIALECTS

WAIT_S = 20.0
REST = "https://fapi.binance.com/fapi/v1/openInterest"
SUSHI = Instrument(
    "binance-usdm", "SUSHI-USDT-PERP", 1, "SUSHIUSDT", "linear_perpetual", "SUSHI", "USDT",
    "USDT", 1.0, 1.0, 0.001, 1.0, None, "trading",
)  # fmt: skip
CTK = Instrument(
    "binance-usdm", "CTK-USDT-PERP", 1, "CTKUSDT", "linear_perpetual", "CTK", "USDT",
    "USDT", 1.0, 1.0, 0.001, 1.0, None, "trading",
)  # fmt: skip


def _recording(tmp_path: Path, usdm: Path) -> Path:
    ws = list(read_recording(usdm))[:2]
    at = ws[0].recv_ns
    path = tmp_path / "oi.jsonl"
    with RecordingWriter(path) as writer:
        writer.write(
            RecordedFrame(
                at, "binance-usdm", f"{REST}?symbol=SUSHIUSDT",
                f'{{"openInterest":"1234567.8","symbol":"SUSHIUSDT","time":{at // 1_000_000}}}',
            )
        )  # fmt: skip
        writer.write(
            RecordedFrame(
                at, "binance-usdm", f"{REST}?symbol=CTKUSDT",
                '{"code":-1121,"msg":"Invalid symbol."}',
            )
        )  # fmt: skip
        for frame in ws:
            writer.write(frame)
    return path


def _errors(metrics: IngestMetrics) -> float:
    name = "marketstream_ingest_rest_poll_errors_total"
    return metrics.registry.get_sample_value(name, {"exchange": "binance-usdm"}) or 0.0


async def test_polled_open_interest_is_published_and_errors_dead_lettered(
    client: redis.asyncio.Redis, tmp_path: Path, recordings: Path
) -> None:
    metrics = IngestMetrics()
    publisher = Publisher(
        client,
        PublisherSettings.from_config(IngestConfig(publish_interval_ms=2), StreamsConfig()),
        metrics,
    )
    flusher = asyncio.create_task(publisher.run())
    stop = asyncio.Event()
    recording = _recording(tmp_path, recordings / "binance-usdm.jsonl")
    async with ReplayServer(recording, DIALECTS, max_speed=True) as server:
        poller = OpenInterestPoller(
            BINANCE_USDM,
            server.http_url,
            ["SUSHI-USDT-PERP", "CTK-USDT-PERP", "AKRO-USDT-PERP"],  # AKRO: nothing recorded
            interval_s=3600,
            publisher=publisher,
            metrics=metrics,
            backoff=Backoff(0.01, 0.02),
            max_future_skew_ns=10**18,
            instruments={"SUSHI-USDT-PERP": SUSHI, "CTK-USDT-PERP": CTK},
        )
        task = asyncio.create_task(poller.run(stop))
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while _errors(metrics) < 3:  # AKROUSDT answers 404: retried, counted
            assert asyncio.get_running_loop().time() < deadline, "no retries counted"
            await asyncio.sleep(0.01)
        assert not task.done()  # still retrying, never gave up
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
    await publisher.close()
    await asyncio.wait_for(flusher, WAIT_S)
    entries = await read_range(client, "md:{binance-usdm}:open_interest")
    records = [decode_entry(fields) for _, fields in entries]
    assert len(records) == 1
    record = records[0]
    assert isinstance(record, OpenInterest)
    assert (record.symbol, record.open_interest, record.value) == (
        "SUSHI-USDT-PERP", 1234567.8, None,
    )  # fmt: skip
    dead = await read_range(client, DLQ_STREAM)
    assert len(dead) == 1
    reason = dead[0][1][b"reason"].decode()
    assert reason == "binance-usdm: error -1121: Invalid symbol."
