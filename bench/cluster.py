"""Hot writers scaling out on a real 3-master Redis Cluster: records/s drained by 1, 2 and 4
writer processes, each serving its own exchange tags.

For each writer count: a backlog of trades across 8 exchanges (hash tags spread over the three
masters) is published through the publisher, then N writer processes (each a `HotWriter` with
`exchanges` = every N-th tag, as `write-hot --exchanges` runs it) are started, wait until all
have connected, and drain it into one real QuestDB. Time runs from "go" until every writer has
drained its tags and QuestDB has applied its WAL (queryable). Counts are checked: rows and
distinct dedup keys per run equal the records published, and every stream is acknowledged.

`python -m bench.cluster` alone, or as the `cluster` suite of `bench/run.py`. The backlog size
is BENCH_CLUSTER_RECORDS (default 240,000 records per run).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from marketstream.config import IngestConfig, PipelineConfig, StreamsConfig, load_config
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.schemas.records import Trade
from marketstream.services import process
from marketstream.services.questdb_server import QuestDBPorts, start_questdb
from marketstream.services.redis_cluster import start_redis_cluster
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_tables import create_all_sql
from marketstream.tiers.redis_bus import connect_bus_async, stream_key
from marketstream.writers.hot_writer import HotWriter
from marketstream.writers.hot_writer_questdb import wal_applied
from marketstream.writers.hot_writer_redis import group_states

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "pipeline.yaml"
TAGS = 8
WRITER_COUNTS = (1, 2, 4)
DEFAULT_RECORDS = 240_000


def _exchanges(run: int) -> list[str]:
    return [f"bc{run}-{i}" for i in range(TAGS)]


async def _fill(url: str, exchanges: list[str], total: int) -> None:
    """`total` trades, round-robin over the exchanges, through the publisher (as ingest)."""
    client = connect_bus_async(url)
    publisher = Publisher(
        client, PublisherSettings.from_config(IngestConfig(), StreamsConfig()), IngestMetrics()
    )
    flusher = asyncio.create_task(publisher.run())
    t0 = time.time_ns() - 3_600 * 10**9
    for i in range(total):
        exchange = exchanges[i % len(exchanges)]
        ts = t0 + i * 1000
        publisher.add(Trade(exchange, "BTC-USDT", ts, ts + 7, str(i), 100.0 + i % 50, 0.5, "buy"))
        if i % 2000 == 0:
            await publisher.wait_for_room()
            await asyncio.sleep(0)
    await publisher.close()
    await flusher
    await client.aclose()


def _worker(url: str, questdb_url: str, exchanges: list[str], consumer: str) -> int:
    """One writer process: connect, say `ready`, wait for `go` on stdin, drain, print count."""
    config = load_config(CONFIG, environ={})
    config = config.model_copy(
        update={"hot": config.hot.model_copy(update={"metrics_port": 0, "exchanges": ()})}
    )

    async def main() -> int:
        writer = HotWriter(config, url, questdb_url, consumer=consumer, exchanges=exchanges)
        await writer.client.ping()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop))
        await writer.wait_drained()
        stop.set()
        await task
        return writer.written

    written = asyncio.run(main())
    print(f"written {written}", flush=True)
    return 0


def _drain(url: str, questdb: QuestDBHttp, exchanges: list[str], writers: int) -> float:
    """Start `writers` processes on disjoint tag sets; seconds from go to queryable."""
    procs = []
    for i in range(writers):
        argv = [sys.executable, "-m", "bench.cluster", "--worker", url, questdb.base_url,
                ",".join(exchanges[i::writers]), f"bench-writer-{i}"]  # fmt: skip
        pipes: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
        procs.append(subprocess.Popen(argv, text=True, cwd=ROOT, **pipes))
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a writer process did not start: {line!r}")
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        if proc.wait(timeout=1800) != 0:
            raise RuntimeError(f"a writer process exited with {proc.returncode}")
    while not wal_applied(questdb):
        time.sleep(0.02)
    return time.perf_counter() - started


def _check(url: str, questdb: QuestDBHttp, exchanges: list[str], total: int) -> None:
    listed = ", ".join(f"'{e}'" for e in exchanges)  # our own names, not input
    where = f"FROM trades WHERE exchange IN ({listed})"
    rows = _scalar(questdb, f"SELECT count() {where}")
    distinct = _scalar(
        questdb,
        f"SELECT count() FROM (SELECT DISTINCT ts, exchange, symbol, trade_id {where})",  # noqa: S608
    )
    if rows != total or distinct != total:
        raise AssertionError(f"published {total}, QuestDB has {rows} rows, {distinct} distinct")

    async def acknowledged() -> None:
        client = connect_bus_async(url)
        keys = [stream_key("trades", e) for e in exchanges]
        states = await group_states(client, keys, "hot-writer")
        await client.aclose()
        for key, state in states.items():
            if state is None or state.lag or state.pending:
                raise AssertionError(f"{key} not fully acknowledged: {state}")

    asyncio.run(acknowledged())


def _scalar(questdb: QuestDBHttp, sql: str) -> int:
    return int(questdb.exec(sql)["dataset"][0][0])


def _questdb_config() -> PipelineConfig:
    config = load_config(CONFIG, environ={})
    services = config.services
    if not services.cache_dir.is_absolute():
        services = services.model_copy(update={"cache_dir": ROOT / services.cache_dir})
    return config.model_copy(update={"services": services})


def run() -> dict[str, Any]:
    total = int(os.environ.get("BENCH_CLUSTER_RECORDS", DEFAULT_RECORDS))
    config = _questdb_config()
    results: dict[str, Any] = {"records_per_run": total, "exchange_tags": TAGS, "nodes": 3}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = start_redis_cluster(root / "cluster", nodes=3)
        server = start_questdb(
            config.services, root / "questdb", ports=QuestDBPorts.pick(),
            log_path=root / "questdb.log", pid_path=root / "questdb.pid",
        )  # fmt: skip
        try:
            questdb = QuestDBHttp(server.http_url)
            for sql in create_all_sql():  # not timed: the writers find the tables there
                questdb.exec(sql)
            for run_no, writers in enumerate(WRITER_COUNTS):
                exchanges = _exchanges(run_no)
                asyncio.run(_fill(cluster.url, exchanges, total))
                elapsed = _drain(cluster.url, questdb, exchanges, writers)
                _check(cluster.url, questdb, exchanges, total)
                rate = round(total / elapsed)
                results[f"writers_{writers}_records_per_s"] = rate
                print(f"  {writers} writer process(es): {total} records in {elapsed:.2f} s, "
                      f"{rate} records/s (counts checked)", flush=True)  # fmt: skip
        finally:
            process.stop(server.process.pid, server.process.marker)
            cluster.stop()
    return results


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        url, questdb_url, exchanges, consumer = argv[1:5]
        return _worker(url, questdb_url, exchanges.split(","), consumer)
    print(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
