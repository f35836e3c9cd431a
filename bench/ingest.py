"""Ingest throughput: normalize per exchange, replay -> ingest -> Redis, latest-price reads.

- normalize: frames through the live path (mapper, books, validation) on one core, from
  memory, for every real recording found and for generated Kraken, OKX and Bybit sessions.
- into Redis, in process: frames from memory through the processor and the publisher into a
  real redis-server (every flush confirmed): what one ingest core can push.
- into Redis, end to end: `replay-server --max` in its own process feeds `IngestService` over
  a real WebSocket; this figure is bounded by the replay server (one Python core sending).
- latest price: `GET price:<exchange>:<symbol>` round trips from a client, p50/p99.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.timing import per_second
from marketstream.config import IngestConfig, PipelineConfig, StreamsConfig, load_config
from marketstream.ingest.books import BookKeeper
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.processor import FrameProcessor
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.ingest.service import IngestService
from marketstream.instruments.catalog import Catalog
from marketstream.instruments.recorded import instruments_in
from marketstream.instruments.snapshot import load_shipped, overlay
from marketstream.replay.recording_format import RecordedFrame, read_recording
from marketstream.schemas.instruments import EXCHANGES
from marketstream.services import process
from marketstream.services.redis_server import start_redis
from marketstream.tiers.redis_bus import connect, connect_async, price_key
from marketstream.venues.base.mapper import Mapper
from marketstream.venues.base.sessions import write_session
from marketstream.venues.registry import SESSIONS, get_venue
from tests.conftest import recordings_path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "pipeline.yaml"
E2E_RECORDING = "binance-usdm.jsonl"
E2E_REPEATS = 40  # the 1535-frame recording, 40 times over: ~61k frames
USDM_SYMBOLS = "[SUSHI-USDT-PERP, AKRO-USDT-PERP, KEEP-USDT-PERP, CTK-USDT-PERP]"
GENERATED_STEPS = 2000  # per generated session: ~8k frames of book, quote, trade, candle
PRICE_READS = 20_000
Step = tuple[Mapper, str, int]  # a frame with the mapper of its URL and its receive time


def _mapper(exchange: str, url: str, recorded: Sequence[RecordedFrame] = ()) -> Mapper:
    """The mapper ingest would run for frames recorded from `url`, knowing what ingest knows:
    the shipped instrument snapshot under the recording's own answers, the configured
    symbols."""
    config = load_config(CONFIG, environ={})
    ex = get_venue(exchange)
    known = overlay(Catalog(load_shipped()), instruments_in(ex, recorded)).for_exchange(ex.name)
    configured = config.exchanges[exchange].symbols  # type: ignore[index]
    if ex.mapper_for_recording is not None:
        return ex.mapper_for_recording(url, known, configured)
    return ex.make_mapper(configured, known)


def _processor(exchange: str, url: str, recorded: Sequence[RecordedFrame] = ()) -> FrameProcessor:
    """The live path's processor (mapper, books, validation) for frames from `url`."""
    ingest = load_config(CONFIG, environ={}).ingest
    ex = get_venue(exchange)
    books = BookKeeper(ex.name, ex.book_rules, depth=ingest.book_depth, interval_ns=10**9)
    mapper = _mapper(exchange, url, recorded)
    return FrameProcessor(mapper, books, max_future_skew_ns=5 * 10**9, known_symbols=None)


def okx_capture(directory: Path) -> Path:
    """The real 2022 OKX session (tests/data/captures): spot, an inverse swap and an inverse
    dated future, with the instrument answers read a minute before it."""
    captures = ROOT / "tests" / "data" / "captures"
    frames = [
        frame
        for name in ("okx-instruments-rest", "okx-trades", "okx-tickers", "okx-books")
        for frame in read_recording(captures / f"{name}.jsonl")
    ]
    path = directory / "okx-capture-2022.jsonl"
    path.write_bytes(
        b"".join(f.to_json_line() for f in sorted(frames, key=lambda f: (not f.is_rest, f.recv_ns)))
    )
    return path


def generated_sessions(directory: Path) -> list[Path]:
    """Kraken, OKX and Bybit sessions in their documented formats (no real captures here)."""
    paths = []
    for exchange, session in SESSIONS.items():
        path = directory / f"{exchange}-generated.jsonl"
        write_session(str(path), session(GENERATED_STEPS))
        paths.append(path)
    return paths


def normalize_rates(paths: list[Path]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for path in paths:
        recorded = list(read_recording(path))
        frames = [f for f in recorded if not f.is_rest]
        exchange = frames[0].exchange
        processor = _processor(exchange, frames[0].url, recorded)
        # a session over several endpoints (Bybit's spot and linear) maps each frame with
        # its URL's mapper, as normalize does
        mappers = {url: _mapper(exchange, url, recorded) for url in {f.url for f in frames}}
        steps: list[Step] = [(mappers[f.url], f.frame, f.recv_ns) for f in frames]
        processed = []
        for mapper, frame, recv_ns in steps:
            processor.mapper = mapper
            processed.append(processor.process(frame, recv_ns))
        records = sum(len(p.records) for p in processed)
        rejected = sum(len(p.rejected) for p in processed)
        label = "okx-capture" if "capture" in path.name else exchange

        def run(steps: list[Step] = steps, p: FrameProcessor = processor) -> int:
            for mapper, frame, recv_ns in steps:
                p.mapper = mapper
                p.process(frame, recv_ns)
            return len(steps)

        frames_per_s = per_second(run, repeats=3, min_seconds=0.5)
        source = "generated session" if "generated" in path.name else "real recording"
        results[label] = {
            "source": source,
            "frames": len(frames),
            "records": records,
            "rejected": rejected,
            "frames_per_s": round(frames_per_s),
            "records_per_s": round(frames_per_s * records / len(frames)),
        }
        print(
            f"  normalize {label:13s} {frames_per_s:>10,.0f} frames/s "
            f"{frames_per_s * records / len(frames):>10,.0f} records/s ({rejected} rejected)"
        )
    return results


def _big_recording(source: Path, target: Path, repeats: int) -> int:
    """The recording repeated with shifted receive times: a long feed of real frames."""
    frames = [f for f in read_recording(source) if not f.is_rest]
    write_repeated(frames, target, repeats)
    return len(frames) * repeats


def write_repeated(frames: Sequence[RecordedFrame], target: Path, repeats: int) -> None:
    """`frames` as a recording, `repeats` times, each copy's receive times after the last's."""
    span = frames[-1].recv_ns - frames[0].recv_ns + 1
    with target.open("wb") as out:
        for n in range(repeats):
            for f in frames:
                shifted = RecordedFrame(f.recv_ns + n * span, f.exchange, f.url, f.frame)
                out.write(shifted.to_json_line())


async def _ingest_into_redis(recording: Path, frames: int, redis_url: str) -> dict[str, Any]:
    replay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketstream",
            "replay-server",
            "--recording",
            str(recording),
            "--max",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert replay.stdout is not None
        ws_url, http_url = replay.stdout.readline().split()[:2]
        service = IngestService(usdm_replay_config(ws_url, http_url), redis_url)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop, metrics_port=0))
        start: float | None = None
        while (received := _frames_received(service)) < frames:
            if start is None and received > 0:
                start = time.perf_counter()
            await asyncio.sleep(0.01)
        await service.publisher.wait_flushed()
        elapsed = time.perf_counter() - (start or time.perf_counter())
        published = service.publisher.published
        stop.set()
        await task
    finally:
        replay.terminate()
        replay.wait(timeout=30)
    return {
        "frames": frames,
        "records": published,
        "frames_per_s": round(frames / elapsed),
        "records_per_s": round(published / elapsed),
    }


async def _publish_from_memory(recording: Path, redis_url: str) -> dict[str, Any]:
    frames = [f for f in read_recording(recording) if not f.is_rest]
    processor = _processor(frames[0].exchange, frames[0].url)
    metrics = IngestMetrics()
    publisher = Publisher(
        connect_async(redis_url),
        PublisherSettings.from_config(IngestConfig(), StreamsConfig()),
        metrics,
    )
    flusher = asyncio.create_task(publisher.run())
    records = 0
    start = time.perf_counter()
    for i, frame in enumerate(frames):
        for record in processor.process(frame.frame, frame.recv_ns).records:
            publisher.add(record)
            records += 1
        if i % 256 == 0:
            await asyncio.sleep(0)  # let the flusher run, as the socket reads would
    await publisher.close()
    await flusher
    elapsed = time.perf_counter() - start
    await publisher.client.aclose()
    return {
        "frames": len(frames),
        "records": records,
        "frames_per_s": round(len(frames) / elapsed),
        "records_per_s": round(records / elapsed),
    }


def usdm_replay_config(ws_url: str, http_url: str) -> PipelineConfig:
    """The configuration with only Binance USD-M, pointed at a replay of its recording."""
    environ = {
        f"MARKETSTREAM_EXCHANGES__{name.upper().replace('-', '_')}__ENABLED": "false"
        for name in EXCHANGES
        if name != "binance-usdm"
    }
    environ |= {
        "MARKETSTREAM_EXCHANGES__BINANCE_USDM__URL": ws_url,
        "MARKETSTREAM_EXCHANGES__BINANCE_USDM__REST_URL": http_url,
        "MARKETSTREAM_EXCHANGES__BINANCE_USDM__SYMBOLS": USDM_SYMBOLS,
        "MARKETSTREAM_EXCHANGES__BINANCE_USDM__CHANNELS": "[trades, quotes, candles, books]",
    }
    return load_config(CONFIG, environ=environ)


def _frames_received(service: IngestService) -> float:
    value = service.metrics.registry.get_sample_value(
        "marketstream_ingest_frames_total", {"exchange": "binance-usdm"}
    )
    return value or 0.0


def _price_reads(redis_url: str) -> dict[str, Any]:
    client = connect(redis_url)
    key = price_key("binance-usdm", "SUSHI-USDT-PERP")
    client.get(key)
    samples = []
    for _ in range(PRICE_READS):
        started = time.perf_counter_ns()
        client.get(key)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    client.close()
    return {
        "reads": PRICE_READS,
        "p50_us": round(statistics.median(samples) / 1000, 1),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 1),
    }


def run() -> dict[str, Any]:
    recordings = recordings_path()
    if not recordings.is_dir():
        print(f"  skipped: no recordings at {recordings}")
        return {"skipped": f"no recordings at {recordings}"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = [
            *sorted(recordings.glob("*.jsonl")),
            okx_capture(root),
            *generated_sessions(root),
        ]
        results: dict[str, Any] = {"normalize": normalize_rates(paths)}
        server = start_redis(
            root / "redis",
            port=process.free_port(),
            log_path=root / "redis.log",
            pid_path=root / "redis.pid",
            timeout_s=30,
        )
        try:
            big = root / E2E_RECORDING
            frames = _big_recording(recordings / E2E_RECORDING, big, E2E_REPEATS)
            local = asyncio.run(_publish_from_memory(big, server.url))
            print(
                f"  processor -> publisher -> redis: {local['frames_per_s']:,} frames/s, "
                f"{local['records_per_s']:,} records/s (one core, {frames:,} frames)"
            )
            e2e = asyncio.run(_ingest_into_redis(big, frames, server.url))
            print(
                f"  replay -> ingest -> redis: {e2e['frames_per_s']:,} frames/s, "
                f"{e2e['records_per_s']:,} records/s ({frames:,} frames)"
            )
            prices = _price_reads(server.url)
            print(f"  GET price:...: p50 {prices['p50_us']} us, p99 {prices['p99_us']} us")
        finally:
            process.stop(server.process.pid, server.process.marker)
    results["into_redis_in_process"] = local
    results["into_redis_via_replay"] = e2e
    results["latest_price_get"] = prices
    return results
