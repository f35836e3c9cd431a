"""The hot writer and the hot queries, on real Redis and QuestDB.

- writer alone: a backlog of real records (the recording's, shifted in time so that every
  copy is a new row) published to Redis first, then one writer drains it: its rows/s from
  start-up done to queryable, with the counts checked, and flush p99 without replay and
  ingest competing for the two cores (`python -m bench.hot backlog [repeats]` runs it alone);
- queries: p50 of `latest_trade`, `trades` (up to 1,000 rows) and 1m candles over the data.

Replay -> queryable and freshness run the pipeline as `demo` does, ingest and writers as
processes: `bench/pipeline.py` and `bench/freshness.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from msgspec.structs import replace
from prometheus_client import CollectorRegistry

from bench.ingest import _processor
from bench.local_services import running_services
from marketstream.config import IngestConfig, PipelineConfig, StreamsConfig
from marketstream.gc_settings import apply_gc_settings
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.replay.recording_format import read_recording
from marketstream.run.demo import histogram_quantile
from marketstream.run.processes import create_schema
from marketstream.schemas.columns import SPECS, spec_of
from marketstream.schemas.records import Record
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_tables import create_all_sql
from marketstream.tiers.redis_bus import connect_async
from marketstream.wiring import endpoint, hot_queries
from marketstream.writers.hot_writer import HotWriter
from marketstream.writers.hot_writer_redis import discover_streams, group_states
from tests.conftest import recordings_path

QUERY_REPEATS = 100
BACKLOG_RECORDS = 1_000_000


def _flushes(registry: CollectorRegistry) -> dict[str, Any]:
    """Flush count, p50 and p99. With few flushes the p99 is their slowest, which in a short
    run is the first one, into tables QuestDB has just created."""
    name = "marketstream_hot_write_seconds"
    count = registry.get_sample_value(f"{name}_count") or 0
    p50, p99 = (histogram_quantile(registry, name, q) for q in (0.5, 0.99))
    return {
        "flushes": int(count),
        "flush_ms_p50": None if p50 is None else round(p50 * 1000, 1),
        "flush_ms_p99": None if p99 is None else round(p99 * 1000, 1),
    }


def _backlog_records(recording: Path, count: int) -> list[Record]:
    """The recording's records, copied with shifted times (and trade ids) until `count`."""
    frames = [f for f in read_recording(recording) if not f.is_rest]
    processor = _processor(frames[0].exchange, frames[0].url)
    base = [r for f in frames for r in processor.process(f.frame, f.recv_ns).records]
    span = max(r.ts for r in base) - min(r.ts for r in base) + 1
    records: list[Record] = []
    copy = 0
    while len(records) < count:
        shift = copy * span
        for r in base:
            changes: dict[str, Any] = {"ts": r.ts + shift}
            if hasattr(r, "trade_id"):
                changes["trade_id"] = f"{r.trade_id}-{copy}"
            records.append(replace(r, **changes))
        copy += 1
    return records[:count]


def _distinct_rows(records: list[Record]) -> dict[str, int]:
    """Rows each table holds once every record is written: distinct dedup keys (a candle
    updated while its bar was open is one row)."""
    keys: dict[str, set[tuple[Any, ...]]] = {}
    for record in records:
        spec = spec_of(record)
        key = (getattr(record, spec.timestamp), *(getattr(record, k) for k in spec.dedup_keys))
        keys.setdefault(spec.table, set()).add(key)
    return {table: len(found) for table, found in keys.items()}


async def _writer_backlog(
    config: PipelineConfig, state: Path, records: list[Record]
) -> dict[str, Any]:
    """One writer process drains `records` published beforehand; rows/s from the moment it
    has its tables (start-up excluded) until every row is queryable. The counts are checked:
    each table holds its distinct records, every entry is acknowledged, none is pending."""
    redis_url = endpoint(config, state, "redis")
    http = QuestDBHttp(endpoint(config, state, "questdb_http"))
    for sql in create_all_sql():
        http.exec(sql)
    for spec in SPECS:  # earlier suites wrote the same instruments: start from empty tables
        http.exec(f"TRUNCATE TABLE {spec.table}")
    client = connect_async(redis_url)
    await client.flushdb()
    publisher = Publisher(
        client, PublisherSettings.from_config(IngestConfig(), StreamsConfig()), IngestMetrics()
    )
    flusher = asyncio.create_task(publisher.run())
    for i, record in enumerate(records):
        publisher.add(record)
        if i % 1000 == 0:
            await publisher.wait_for_room()
            await asyncio.sleep(0)
    await publisher.close()
    await flusher
    # The writer runs as `write-hot` does: the bench's own records gone (a collection would
    # otherwise traverse them all), then the configuration's collector settings.
    expected, entries = _distinct_rows(records), len(records)
    records.clear()
    apply_gc_settings(config.runtime)
    writer = HotWriter(config, redis_url, http.base_url)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop, metrics_port=0))
    while not writer.health()[1]["questdb_ready"] and not task.done():
        await asyncio.sleep(0.001)
    start, cpu_start = time.perf_counter(), time.process_time()
    await writer.wait_drained(queryable=True, poll_s=0.005)
    elapsed = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start  # the writer's threads; the bench's polls are idle
    stop.set()
    await task
    rows = {t: int(http.exec(f"SELECT count() FROM {t}")["dataset"][0][0]) for t in expected}  # noqa: S608
    keys = sorted(await discover_streams(client))
    states = await group_states(client, keys, config.hot.group)
    await client.aclose()
    left = {k: s for k, s in states.items() if s is None or s.lag or s.pending}
    if rows != expected or writer.written != entries or left or writer.dead_lettered:
        raise AssertionError(
            f"writer backlog: expected rows {expected} and {entries} entries acknowledged, "
            f"got rows {rows}, {writer.written} acknowledged, {writer.dead_lettered} dead "
            f"letters, streams not drained: {left}"
        )
    return {
        "entries": entries,
        "rows_in_questdb": sum(rows.values()),
        "rows_per_s": round(writer.written / elapsed),
        "seconds": round(elapsed, 3),
        # Rows per CPU second of the writer process: what wall time would give on idle cores.
        "rows_per_cpu_s": round(writer.written / cpu_s),
        **_flushes(writer.metrics.registry),
    }


def _backlog(config: PipelineConfig, state: Path, recordings: Path) -> dict[str, Any]:
    records = _backlog_records(recordings / "binance-usdm.jsonl", BACKLOG_RECORDS)
    backlog = asyncio.run(_writer_backlog(config, state, records))
    print(
        f"  one writer process on a backlog of {backlog['entries']:,} entries: "
        f"{backlog['rows_per_s']:,} rows/s, {backlog['rows_per_cpu_s']:,} rows per CPU second "
        f"({backlog['rows_in_questdb']:,} rows, counts checked); {backlog['flushes']} flushes, "
        f"p50 {backlog['flush_ms_p50']} ms, p99 {backlog['flush_ms_p99']} ms"
    )
    return backlog


def run_backlog(repeats: int = 1) -> list[dict[str, Any]]:
    """The writer figure alone (`python -m bench.hot backlog [repeats]`), on fresh services."""
    with running_services() as (config, state):
        return [_backlog(config, state, recordings_path()) for _ in range(repeats)]


def _p50_ms(call: Any, repeats: int = QUERY_REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 2)


def _queries(config: PipelineConfig, state: Path) -> dict[str, Any]:
    with hot_queries(config, state) as hot:
        last = hot.latest_trade("binance-usdm", "SUSHI-USDT-PERP")
        assert last is not None
        end = last.ts + 1
        start = end - 3_600 * 10**9
        return {
            "latest_trade_ms_p50": _p50_ms(
                lambda: hot.latest_trade("binance-usdm", "SUSHI-USDT-PERP")
            ),
            "trades_1000_ms_p50": _p50_ms(
                lambda: hot.trades("binance-usdm", "SUSHI-USDT-PERP", start, end, limit=1000)
            ),
            "ohlcv_1m_ms_p50": _p50_ms(
                lambda: hot.ohlcv("binance-usdm", "SUSHI-USDT-PERP", "1m", start, end)
            ),
        }


def run() -> dict[str, Any]:
    recordings = recordings_path()
    if not recordings.is_dir():
        print(f"  skipped: no recordings at {recordings}")
        return {"skipped": f"no recordings at {recordings}"}
    with running_services() as (config, state):
        create_schema(endpoint(config, state, "questdb_http"))  # views: `_queries` reads one
        backlog = _backlog(config, state, recordings)
        queries = _queries(config, state)
        print(
            f"  queries p50: latest {queries['latest_trade_ms_p50']} ms, "
            f"trades(1000) {queries['trades_1000_ms_p50']} ms, "
            f"1m candles {queries['ohlcv_1m_ms_p50']} ms"
        )
    return {"writer_backlog": backlog, "queries": queries}


if __name__ == "__main__":
    if sys.argv[1:2] != ["backlog"]:
        raise SystemExit("usage: python -m bench.hot backlog [repeats]  (make bench runs all)")
    run_backlog(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
