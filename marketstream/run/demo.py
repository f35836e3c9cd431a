"""`marketstream demo`: the hot path offline, on recordings, ending in a JSON summary.

Each recording found is served by an in-process replay server; an exchange with no recording
and a session generator (`Venue.session`) replays a session generated in its documented
protocol, and the summary says which sessions were real and which generated; ingest,
configured for exactly the recorded exchanges and symbols, publishes into Redis and the hot
writer drains the streams into QuestDB. When every replay has finished and QuestDB has
applied what was written, the summary reports what was published, what QuestDB holds
(`SELECT count()`), the latest price of every instrument and how fresh the data was when it
became queryable.

The demo runs its own services in their own state directory, emptied first, so its counts
are its own: quotes are keyed by their receive time, and a second run into the same database
would add rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from marketstream.config import PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.ingest.normalize import normalize_recording
from marketstream.ingest.service import plan_connections
from marketstream.replay.recording_format import read_recording
from marketstream.replay.server import ReplayServer
from marketstream.run.pipeline import Pipeline
from marketstream.schemas.codec import decode_record
from marketstream.schemas.columns import SPECS, spec_of
from marketstream.schemas.instruments import EXCHANGES
from marketstream.services.manager import start_services, stop_services
from marketstream.tiers.redis_bus import connect_async, price_key
from marketstream.venues.base.sessions import write_session
from marketstream.venues.registry import DIALECTS, SESSIONS
from marketstream.wiring import PipelineEndpoints, pipeline_endpoints

DRAIN_TIMEOUT_S = 300.0
TABLE_CHANNELS: Mapping[str, str] = {
    "trades": "trades",
    "quotes": "quotes",
    "candles": "candles",
    "books": "books",
    "funding": "funding",
    "liquidations": "liquidations",
    "open_interest": "open_interest",
}


GENERATED_STEPS = 600  # 60 s of exchange time per generated session (100 ms steps)
# Longer than any exchange's subscription pacing (one channel a second at the slowest), so that
# every channel is subscribed before a replay at maximum speed starts.
SUBSCRIBE_SETTLE_S = 1.5


@dataclass(frozen=True, slots=True)
class DemoFeed:
    exchange: str
    recording: Path
    symbols: tuple[str, ...]
    channels: tuple[str, ...]
    generated: bool = False


def find_feeds(
    directory: Path, config: PipelineConfig, generated_dir: Path | None = None
) -> list[DemoFeed]:
    """One feed per recording of a known exchange; symbols and channels read from the file.

    With `generated_dir`, each exchange that has a session generator and no recording in
    `directory` gets a generated session written there and replayed like a recording.
    """
    if not directory.is_dir():
        raise MarketStreamError(
            f"recordings directory {directory} not found: pass --recordings DIR"
        )
    found: list[tuple[Path, str, bool]] = []
    for path in sorted(directory.glob("*.jsonl")):
        first = next(iter(read_recording(path)), None)
        if first is not None and first.exchange in EXCHANGES:
            found.append((path, first.exchange, False))
    if generated_dir is not None:
        recorded = {exchange for _, exchange, _ in found}
        generated_dir.mkdir(parents=True, exist_ok=True)
        for exchange, session in SESSIONS.items():
            if exchange not in recorded:
                path = generated_dir / f"{exchange}.jsonl"
                write_session(str(path), session(GENERATED_STEPS))
                path = path.resolve()
                found.append((path, exchange, True))
    feeds = []
    for path, exchange, generated in found:
        out = io.BytesIO()
        configured = config.exchanges[exchange].symbols if exchange in config.exchanges else ()
        normalize_recording(path, exchange, out, config.ingest, symbols=configured)
        records = [decode_record(line) for line in out.getvalue().splitlines()]
        tables = {spec_of(r).table for r in records} | {"books"}  # books may need snapshots
        channels = tuple(TABLE_CHANNELS[t] for t in TABLE_CHANNELS if t in tables)
        symbols = tuple(sorted({r.symbol for r in records}))
        if symbols:
            feeds.append(DemoFeed(exchange, path, symbols, channels, generated))
    if not feeds:
        raise MarketStreamError(f"no recording of a known exchange in {directory}")
    return feeds


def demo_config(
    config: PipelineConfig, feeds: list[DemoFeed], servers: Mapping[str, ReplayServer]
) -> PipelineConfig:
    """The configuration with only the recorded exchanges, pointed at their replay servers."""
    exchanges: dict[str, Any] = {}
    for feed in feeds:
        server = servers[feed.exchange]
        exchanges[feed.exchange] = {
            "enabled": True,
            "url": server.ws_url,
            "rest_url": server.http_url,
            "symbols": list(feed.symbols),
            "channels": list(feed.channels),
        }
    data = config.model_dump(mode="json")
    data["exchanges"] = exchanges
    return PipelineConfig.model_validate(data)


def histogram_quantile(registry: CollectorRegistry, name: str, q: float) -> float | None:
    """The q-quantile of a Prometheus histogram (summed over labels), interpolated in its
    bucket as Prometheus' histogram_quantile does; None without observations."""
    buckets: dict[float, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


MetricsHook = Callable[[dict[str, str]], Awaitable[None]]


async def run_demo(
    config: PipelineConfig,
    recordings: Path,
    state_dir: Path,
    *,
    speed: float | None,
    linger_s: float = 0.0,
    on_drained: MetricsHook | None = None,
    generate_missing: bool = True,
) -> dict[str, Any]:
    """Replay, drain, summarize. Once drained, the processes' /metrics stay served for
    `linger_s` seconds (their URLs on stderr) and `on_drained` gets the URLs. With
    `generate_missing`, exchanges without a recording replay a generated session."""
    generated_dir = state_dir / "generated-sessions" if generate_missing else None
    feeds = find_feeds(recordings, config, generated_dir)
    async with contextlib.AsyncExitStack() as stack:
        servers = {
            feed.exchange: await stack.enter_async_context(
                ReplayServer(
                    feed.recording,
                    DIALECTS,
                    speed=speed or 1.0,
                    max_speed=speed is None,
                    settle_s=SUBSCRIBE_SETTLE_S,
                )
            )
            for feed in feeds
        }
        demo = demo_config(config, feeds, servers)
        endpoints = pipeline_endpoints(demo, state_dir)
        pipeline = Pipeline(demo, endpoints, plans=plan_connections(demo))
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop, ingest_metrics_port=0, writer_metrics_port=0))
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                for server in servers.values():
                    await _finished(server, task)
                await pipeline.ingest.publisher.wait_flushed()
                await pipeline.writer.wait_drained(queryable=True)
            urls = metrics_urls(demo, pipeline)
            if linger_s > 0:
                print(
                    f"metrics for {linger_s:g} s: {urls['ingest']} (ingest), "
                    f"{urls['writer']} (hot writer)",
                    file=sys.stderr,
                    flush=True,
                )
            if on_drained is not None:
                await on_drained(urls)
            await asyncio.sleep(linger_s)
        finally:
            stop.set()
            await task
    return await _summary(pipeline, endpoints, feeds)


def metrics_urls(config: PipelineConfig, pipeline: Pipeline) -> dict[str, str]:
    """Where the demo's ingest and hot writer serve /metrics (their ports are picked free)."""
    return {
        "ingest": f"http://{config.ingest.metrics_host}:{pipeline.ingest.metrics_port}/metrics",
        "writer": f"http://{config.hot.metrics_host}:{pipeline.writer.metrics_port}/metrics",
    }


async def _finished(server: ReplayServer, task: asyncio.Task[None]) -> None:
    while not server.finished.is_set():
        if task.done():
            task.result()  # the pipeline failed: say why
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # the last frames through ingest


async def _summary(
    pipeline: Pipeline, endpoints: PipelineEndpoints, feeds: list[DemoFeed]
) -> dict[str, Any]:
    by_exchange: dict[str, dict[str, dict[str, int]]] = {
        feed.exchange: {"published": {}, "hot_rows": {}} for feed in feeds
    }
    published: dict[str, int] = {spec.record_type: 0 for spec in SPECS}
    for family in pipeline.ingest.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "marketstream_ingest_records_total":
                record_type, exchange = sample.labels["type"], sample.labels["exchange"]
                published[record_type] = published.get(record_type, 0) + int(sample.value)
                of_exchange = by_exchange.setdefault(exchange, {"published": {}, "hot_rows": {}})
                counts = of_exchange["published"]
                counts[record_type] = counts.get(record_type, 0) + int(sample.value)
    hot_rows: dict[str, int] = {}
    for spec in SPECS:
        rows = pipeline.writer.questdb.exec(
            f"SELECT exchange, count() FROM {spec.table} ORDER BY exchange"  # noqa: S608 - our tables
        )["dataset"]
        hot_rows[spec.table] = sum(int(count) for _, count in rows)
        for exchange, count in rows:  # an exchange with no feed: instruments, say
            of_exchange = by_exchange.setdefault(exchange, {"published": {}, "hot_rows": {}})
            of_exchange["hot_rows"][spec.table] = int(count)
    client = connect_async(endpoints.redis)
    try:
        latest: dict[str, Any] = {}
        for feed in feeds:
            for symbol in feed.symbols:
                raw = await client.get(price_key(feed.exchange, symbol))
                if raw is not None:
                    latest[f"{feed.exchange}:{symbol}"] = orjson.loads(raw)
        dlq = int(await client.xlen("md:dlq"))
    finally:
        await client.aclose()
    registry = pipeline.writer.metrics.registry
    name = "marketstream_hot_receive_freshness_seconds"
    p50, p99 = (histogram_quantile(registry, name, q) for q in (0.5, 0.99))
    return {
        "sessions": {
            feed.exchange: {
                "source": "generated" if feed.generated else "real",
                "file": str(feed.recording),
            }
            for feed in feeds
        },
        "published": published,
        "hot_rows": hot_rows,
        "by_exchange": by_exchange,
        "dlq": dlq,
        "latest": latest,
        "freshness_ms": {
            "p50": None if p50 is None else round(p50 * 1000, 2),
            "p99": None if p99 is None else round(p99 * 1000, 2),
            "measured": "local receive time -> written to QuestDB "
            "(replayed recordings carry their original exchange times)",
        },
    }


def prepare_state(config: PipelineConfig, state_dir: Path) -> None:
    """Empty the demo's own state directory and start its services there."""
    if state_dir.exists():
        stop_services(config, state_dir)
        shutil.rmtree(state_dir)
    status = start_services(config, state_dir)
    if not status.all_answering:
        failing = [n for n, s in status.services.items() if not s.answering]
        raise MarketStreamError(f"demo services did not start: {', '.join(failing)}")
