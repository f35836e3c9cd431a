"""The hot writer and the hot queries, on real Redis and QuestDB.

- writer alone: a backlog of real records (the recording's, shifted in time so that every
  copy is a new row) published to Redis first, then one writer drains it: its rows/s from
  start-up done to queryable, with the counts checked, and flush p99 without replay and
  ingest competing for the two cores (`python -m bench.hot backlog [repeats]` runs it alone),
  and the CPU the writer, Redis and QuestDB each spent per 1,000 rows; then the same backlog
  delivered again, twice: with Redis's AOF on, as configured, and off, since with AOF on
  Redis logs each entry a consumer group delivers as an XCLAIM command (its per-entry cost);
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
from bench.pipeline import SERVICES, cpu_seconds
from marketstream.config import IngestConfig, PipelineConfig, StreamsConfig
from marketstream.gc_settings import apply_gc_settings
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.replay.recording_format import read_recording
from marketstream.run.demo import histogram_quantile
from marketstream.run.processes import create_schema
from marketstream.schemas.columns import SPECS, spec_of
from marketstream.schemas.records import Record
from marketstream.services.state import load_record
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


async def _publish(config: PipelineConfig, state: Path, records: list[Record]) -> None:
    """The records into the streams through ingest's publisher, into emptied tables."""
    http = QuestDBHttp(endpoint(config, state, "questdb_http"))
    for sql in create_all_sql():
        http.exec(sql)
    for spec in SPECS:  # earlier suites wrote the same instruments: start from empty tables
        http.exec(f"TRUNCATE TABLE {spec.table}")
    client = connect_async(endpoint(config, state, "redis"))
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
    await client.aclose()


async def _redeliver(config: PipelineConfig, state: Path) -> None:
    """The drained backlog made new again: empty tables, and the group moved back to the
    streams' start (`XGROUP SETID 0 ENTRIESREAD 0`), so the next writer reads every entry
    as new, with the same work in Redis as the first time."""
    http = QuestDBHttp(endpoint(config, state, "questdb_http"))
    for spec in SPECS:
        http.exec(f"TRUNCATE TABLE {spec.table}")
    client = connect_async(endpoint(config, state, "redis"))
    for key in await discover_streams(client):
        await client.xgroup_setid(key, config.hot.group, "0", entries_read=0)
    await client.aclose()


def _service_cpu(state: Path) -> dict[str, float]:
    """CPU seconds so far of the Redis and QuestDB servers (Redis's reaped AOF rewrites in)."""
    record = load_record(state)
    if record is None:
        return {}
    return {
        label: cpu_seconds(record.processes[name].pid)
        for name, label in SERVICES.items()
        if name in record.processes
    }


async def _drain(
    config: PipelineConfig, state: Path, expected: dict[str, int], entries: int
) -> dict[str, Any]:
    """One writer drains the published backlog; rows/s from the moment it has its tables
    (start-up excluded) until every row is queryable, and the CPU each process used meanwhile.
    The counts are checked: each table holds its distinct records, every entry is
    acknowledged, none is pending."""
    redis_url = endpoint(config, state, "redis")
    http = QuestDBHttp(endpoint(config, state, "questdb_http"))
    writer = HotWriter(config, redis_url, http.base_url)
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop, metrics_port=0))
    while not writer.health()[1]["questdb_ready"] and not task.done():
        await asyncio.sleep(0.001)
    services_start = _service_cpu(state)
    start, cpu_start = time.perf_counter(), time.process_time()
    await writer.wait_drained(queryable=True, poll_s=0.005)
    elapsed = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start  # the writer's threads; the bench's polls are idle
    services = {k: v - services_start[k] for k, v in _service_cpu(state).items()}
    stop.set()
    await task
    rows = {t: int(http.exec(f"SELECT count() FROM {t}")["dataset"][0][0]) for t in expected}  # noqa: S608
    client = connect_async(redis_url)
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
    per_1000 = {"writer": cpu_s, **services}
    return {
        "entries": entries,
        "rows_in_questdb": sum(rows.values()),
        "rows_per_s": round(writer.written / elapsed),
        "seconds": round(elapsed, 3),
        # Rows per CPU second of the writer process: what wall time would give on idle cores.
        "rows_per_cpu_s": round(writer.written / cpu_s),
        "cpu_s_per_1000_rows": {k: round(v / entries * 1000, 4) for k, v in per_1000.items()},
        **_flushes(writer.metrics.registry),
    }


async def _writer_backlog(
    config: PipelineConfig, state: Path, records: list[Record]
) -> dict[str, Any]:
    """One writer process drains `records` published beforehand: the figure. Then the same
    backlog twice more, on the warm JVM: with Redis's AOF as configured, and with it switched
    off (`CONFIG SET appendonly no`), which shows what durability costs Redis per entry."""
    await _publish(config, state, records)
    # The writer runs as `write-hot` does: the bench's own records gone (a collection would
    # otherwise traverse them all), then the configuration's collector settings.
    expected, entries = _distinct_rows(records), len(records)
    records.clear()
    apply_gc_settings(config.runtime)
    result = await _drain(config, state, expected, entries)
    again: dict[str, Any] = {}
    client = connect_async(endpoint(config, state, "redis"))
    try:
        for aof in ("on", "off"):
            if aof == "off":
                await client.config_set("appendonly", "no")
            await _redeliver(config, state)
            run = await _drain(config, state, expected, entries)
            again[f"aof_{aof}"] = {
                k: run[k] for k in ("rows_per_s", "rows_per_cpu_s", "cpu_s_per_1000_rows")
            }
    finally:  # as configured again for what follows (Redis rewrites its AOF to turn it on)
        await client.config_set("appendonly", "yes")
        while (await client.info("persistence"))["aof_rewrite_in_progress"]:
            await asyncio.sleep(0.05)
        await client.aclose()
    return {**result, "again": again}


def _backlog(config: PipelineConfig, state: Path, recordings: Path) -> dict[str, Any]:
    records = _backlog_records(recordings / "binance-usdm.jsonl", BACKLOG_RECORDS)
    backlog = asyncio.run(_writer_backlog(config, state, records))
    print(
        f"  one writer process on a backlog of {backlog['entries']:,} entries: "
        f"{backlog['rows_per_s']:,} rows/s, {backlog['rows_per_cpu_s']:,} rows per CPU second "
        f"({backlog['rows_in_questdb']:,} rows, counts checked); {backlog['flushes']} flushes, "
        f"p50 {backlog['flush_ms_p50']} ms, p99 {backlog['flush_ms_p99']} ms; "
        f"CPU s per 1,000 rows: {_cpu_text(backlog['cpu_s_per_1000_rows'])}"
    )
    for aof, run in backlog["again"].items():
        print(
            f"    again on the warm JVM, Redis AOF {aof.removeprefix('aof_')}: "
            f"{run['rows_per_s']:,} rows/s; CPU s per 1,000 rows: "
            f"{_cpu_text(run['cpu_s_per_1000_rows'])}"
        )
    return backlog


def _cpu_text(per_1000: dict[str, float]) -> str:
    return ", ".join(f"{name} {cpu:.4f}" for name, cpu in per_1000.items())


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
