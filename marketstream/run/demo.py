"""`marketstream demo`: the hot path offline, on recordings, ending in a JSON summary.

Each recording found is served by a replay server in the demo's own process; an exchange
with no recording and a session generator (`Venue.session`) replays a session generated in
its documented protocol, and the summary says which sessions were real and which generated.
Ingest, configured for exactly the recorded exchanges and symbols, and the hot writers run
as supervised child processes (`run.supervisor`), as `marketstream run` starts them. When
ingest has received every message the replays sent, Redis has confirmed every record it
accepted and QuestDB has applied what the writers wrote, the summary reports what was
published (ingest's /metrics), what QuestDB holds (`SELECT count()`), the latest price of
every instrument, how fresh the data was when it became queryable, and each child process
with its restarts.

The demo runs its own services in their own state directory, emptied first, so its counts
are its own: quotes are keyed by their receive time, and a second run into the same database
would add rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from marketstream.config import CONFIG_PATH_ENV, ENV_PREFIX, ENV_SEPARATOR, PipelineConfig
from marketstream.errors import MarketStreamError, ServiceError
from marketstream.ingest.normalize import normalize_recording
from marketstream.replay.recording_format import read_recording
from marketstream.replay.rest_server import RestReplayServer
from marketstream.replay.server import ReplayServer
from marketstream.run.processes import (
    create_schema,
    health,
    pipeline_supervisor,
    sample_sum,
    scrape,
    wait_drained,
)
from marketstream.run.supervisor import Supervisor, child_specs
from marketstream.schemas.codec import decode_record
from marketstream.schemas.columns import SPECS, spec_of
from marketstream.schemas.instruments import EXCHANGES, SOURCES
from marketstream.services.manager import start_services, stop_services
from marketstream.sources.base.sessions import write_recording
from marketstream.sources.registry import get_session, get_source
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.redis_bus import AsyncRedis, connect_async, price_key
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


# Each enabled polled source is polled this many ticks, one a second, from its replay server
# (every token of its configuration in each tick).
SOURCE_TICKS = 10
SOURCE_CADENCE_S = 1.0
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


@dataclass(frozen=True, slots=True)
class DemoSource:
    name: str
    recording: Path
    generated: bool = False


def find_sources(
    directory: Path, config: PipelineConfig, generated_dir: Path | None = None
) -> list[DemoSource]:
    """One per enabled polled source: its recording in `directory` (a `record --source`
    capture) or, with `generated_dir`, answers generated in its API's shape for the
    configured tokens, one a second for a minute."""
    recorded: dict[str, Path] = {}
    for path in sorted(directory.glob("*.jsonl")):
        first = next(iter(read_recording(path)), None)
        if first is not None and first.exchange in SOURCES:
            recorded.setdefault(first.exchange, path)
    found: list[DemoSource] = []
    for name, settings in config.enabled_sources().items():
        if name in recorded:
            found.append(DemoSource(name, recorded[name].resolve()))
        elif generated_dir is not None:
            source = get_source(name)
            path = (generated_dir / f"{name}-prices.jsonl").resolve()
            generated_dir.mkdir(parents=True, exist_ok=True)
            write_recording(
                source,
                settings.symbols,
                path,
                start_ns=time.time_ns(),
                ticks=60,
                cadence_s=SOURCE_CADENCE_S,
                base_url=source.default_url,
                answer_body=get_session(name),
            )
            found.append(DemoSource(name, path, generated=True))
    return found


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
    config: PipelineConfig,
    feeds: list[DemoFeed],
    servers: Mapping[str, ReplayServer],
    sources: Mapping[str, RestReplayServer] | None = None,
) -> PipelineConfig:
    """The configuration with only the recorded exchanges and the replayed sources, pointed
    at their replay servers; each source polled SOURCE_TICKS ticks, one a second."""
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
    data["sources"] = {
        name: data["sources"][name]
        | {
            "url": server.http_url,
            "cadence_s": SOURCE_CADENCE_S,
            "max_rps": 2 * len(get_source(name).batches(list(config.sources[name].symbols))),  # type: ignore[index]
            "burst": 2,
            "max_ticks": SOURCE_TICKS,
        }
        for name, server in (sources or {}).items()
    }
    return PipelineConfig.model_validate(data)


def histogram_quantile(
    source: CollectorRegistry | Iterable[Metric], name: str, q: float
) -> float | None:
    """The q-quantile of a Prometheus histogram (summed over labels and over every family
    given, e.g. several writers' scrapes), interpolated in its bucket as Prometheus'
    histogram_quantile does; None without observations."""
    families = source.collect() if isinstance(source, CollectorRegistry) else source
    buckets: dict[float, float] = {}
    for family in families:
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
    writers: int | None = None,
    on_started: Callable[[Supervisor], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Replay, drain, summarize. Ingest and `writers` hot writers (default `hot.writers`)
    run as supervised child processes. Once drained, their /metrics stay served for
    `linger_s` seconds (URLs on stderr) and `on_drained` gets the URLs by child name;
    `on_started` gets the supervisor once the children run. With `generate_missing`,
    exchanges without a recording replay a generated session."""
    generated_dir = state_dir / "generated-sessions" if generate_missing else None
    feeds = find_feeds(recordings, config, generated_dir)
    polled = find_sources(recordings, config, generated_dir)
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
        rest_servers = {
            found.name: await stack.enter_async_context(
                RestReplayServer(found.recording, fault_answer=get_source(found.name).fault_answer)
            )
            for found in polled
        }
        demo = demo_config(config, feeds, servers, rest_servers)
        endpoints = pipeline_endpoints(demo, state_dir)
        await asyncio.to_thread(create_schema, endpoints.questdb_http)
        config_file = state_dir / "demo-config.json"
        config_file.write_bytes(orjson.dumps(demo.model_dump(mode="json")))
        specs = child_specs(
            demo.model_copy(
                update={
                    "ingest": demo.ingest.model_copy(update={"metrics_port": 0}),
                    "hot": demo.hot.model_copy(update={"metrics_port": 0}),
                }
            ),
            writers=writers or demo.hot.writers,
            config_file=config_file,
            state_dir=state_dir,
            consumer_prefix="demo",
        )
        env = child_environment() | replay_keys(demo)
        supervisor = pipeline_supervisor(demo, endpoints, specs, env=env)
        await supervisor.start()
        try:
            if on_started is not None:
                await on_started(supervisor)
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await _all_through(servers, supervisor)
                await wait_drained(endpoints, demo.hot.group, queryable=True)
            urls = {name: c["metrics"] for name, c in supervisor.status().items()}
            if linger_s > 0:
                listed = ", ".join(f"{url} ({name})" for name, url in urls.items())
                print(f"metrics for {linger_s:g} s: {listed}", file=sys.stderr, flush=True)
            if on_drained is not None:
                await on_drained(urls)
            await asyncio.sleep(linger_s)
            supervisor.check()
            summary = await _summary(supervisor, endpoints, feeds, polled)
        finally:
            await supervisor.stop()
    return summary


def child_environment() -> dict[str, str]:
    """The demo's children read everything from the demo's own configuration file: no
    `MARKETSTREAM_<SECTION>__<KEY>` overlay may point them elsewhere."""
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(ENV_PREFIX) and (ENV_SEPARATOR in k or k == CONFIG_PATH_ENV))
    }


def replay_keys(config: PipelineConfig) -> dict[str, str]:
    """A stand-in API key for each replayed source that needs one and has none in the
    environment: the replay server asks for no key, ingest's start-up check does."""
    return {
        settings.api_key_env: "replay"
        for name, settings in config.enabled_sources().items()
        if settings.api_key_env
        and get_source(name).key_required
        and not os.environ.get(settings.api_key_env)
    }


async def _all_through(servers: Mapping[str, ReplayServer], supervisor: Supervisor) -> None:
    """Every replay finished, ingest received every message sent and Redis confirmed every
    record it accepted. A restarted ingest lost its counts (and what it held): then its
    frame count settling is all there is to wait for."""
    for server in servers.values():
        while not server.finished.is_set():
            supervisor.check()
            await asyncio.sleep(0.05)
    ingest = supervisor.children["ingest"]
    url = ingest.status(supervisor.metrics_host)["metrics"]
    health_url = url.removesuffix("/metrics") + "/healthz"
    previous: dict[str, float] = {}
    while True:
        supervisor.check()
        try:
            families = await scrape(url)
            detail = await health(health_url)
        except ServiceError:
            await asyncio.sleep(0.1)  # restarting
            continue
        received = {
            ex: sample_sum(families, "marketstream_ingest_frames_total", exchange=ex)
            for ex in servers
        }
        complete = all(received[ex] >= server.messages for ex, server in servers.items())
        settled = ingest.restarts > 0 and received == previous
        sources = detail.get("sources")
        polled = not isinstance(sources, dict) or all(s.get("done") for s in sources.values())
        if (complete or settled) and polled and detail.get("unflushed") == 0:
            return
        previous = received
        await asyncio.sleep(0.2 if ingest.restarts else 0.05)


async def _summary(
    supervisor: Supervisor,
    endpoints: PipelineEndpoints,
    feeds: list[DemoFeed],
    polled: list[DemoSource],
) -> dict[str, Any]:
    by_exchange: dict[str, dict[str, dict[str, int]]] = {
        feed.exchange: {"published": {}, "hot_rows": {}} for feed in feeds
    }
    published: dict[str, int] = {spec.record_type: 0 for spec in SPECS}
    status = supervisor.status()
    ingest_families = await scrape(status["ingest"]["metrics"])
    for family in ingest_families:
        for sample in family.samples:
            if sample.name == "marketstream_ingest_records_total":
                record_type, exchange = sample.labels["type"], sample.labels["exchange"]
                published[record_type] = published.get(record_type, 0) + int(sample.value)
                of_exchange = by_exchange.setdefault(exchange, {"published": {}, "hot_rows": {}})
                counts = of_exchange["published"]
                counts[record_type] = counts.get(record_type, 0) + int(sample.value)
    questdb = QuestDBHttp(endpoints.questdb_http)
    hot_rows: dict[str, int] = {}
    for spec in SPECS:
        rows = questdb.exec(
            f"SELECT exchange, count() FROM {spec.table} ORDER BY exchange"  # noqa: S608 - our tables
        )["dataset"]
        hot_rows[spec.table] = sum(int(count) for _, count in rows)
        for exchange, count in rows:  # an exchange with no feed: instruments, say
            of_exchange = by_exchange.setdefault(exchange, {"published": {}, "hot_rows": {}})
            of_exchange["hot_rows"][spec.table] = int(count)
    client = connect_async(endpoints.redis)
    try:
        latest = await _latest(client, feeds, polled)
        dlq = int(await client.xlen("md:dlq"))
    finally:
        await client.aclose()
    writer_families: list[Metric] = []
    for name, child in status.items():
        if name != "ingest":
            writer_families += await scrape(child["metrics"])
    name = "marketstream_hot_receive_freshness_seconds"
    p50, p99 = (histogram_quantile(writer_families, name, q) for q in (0.5, 0.99))
    return {
        "sessions": {
            feed.exchange: {
                "source": "generated" if feed.generated else "real",
                "file": str(feed.recording),
            }
            for feed in feeds
        },
        "sources": {
            found.name: {
                "source": "generated" if found.generated else "recorded",
                "file": str(found.recording),
                **_ticks(ingest_families, found.name),
            }
            for found in polled
        },
        "processes": {
            name: {"pid": child["pid"], "restarts": child["restarts"], "exits": child["exits"]}
            for name, child in status.items()
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


async def _latest(
    client: AsyncRedis, feeds: list[DemoFeed], polled: list[DemoSource]
) -> dict[str, Any]:
    """The latest-price key of every replayed instrument and polled token, by
    `<exchange or source>:<symbol>`."""
    latest: dict[str, Any] = {}
    for feed in feeds:
        for symbol in feed.symbols:
            raw = await client.get(price_key(feed.exchange, symbol))
            if raw is not None:
                latest[f"{feed.exchange}:{symbol}"] = orjson.loads(raw)
    for found in polled:
        keys = [key async for key in client.scan_iter(match=price_key(found.name, "*"))]
        for key in sorted(keys):
            raw = await client.get(key)
            if raw is not None:
                symbol = key.decode().rsplit(":", 1)[1]
                latest[f"{found.name}:{symbol}"] = orjson.loads(raw)
    return latest


def _ticks(families: list[Metric], source: str) -> dict[str, int]:
    """A polled source's token ticks met and missed, from ingest's /metrics."""
    name = "marketstream_ingest_source_ticks_total"
    return {
        f"ticks_{outcome}": int(sample_sum(families, name, source=source, outcome=outcome))
        for outcome in ("met", "missed")
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
