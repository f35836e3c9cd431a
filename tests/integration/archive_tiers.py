"""The archiver's test bed: its own QuestDB (dev mode, so tests can suspend a table's WAL),
the ClickHouse engine behind the warm gateway in its own process, and an S3 API server; and
helpers that read each tier and run `marketstream archive` in a subprocess.

Each archive test module gets its own services (the fixture is module-scoped): archiving moves
every old day of every table, and other tests' data (2021 recordings) must not be moved.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketstream.archiver.days import horizon_day
from marketstream.archiver.moves import FAILPOINT_ENV
from marketstream.config import PipelineConfig, S3Config, ServicesConfig, load_config
from marketstream.generate.history import HistoryConfig, generate
from marketstream.generate.hot_load import load_history
from marketstream.schemas.arrow import conform, to_arrow
from marketstream.schemas.checksum import key_checksum
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import SPEC_BY_TABLE, TableSpec, spec_of
from marketstream.schemas.records import Record
from marketstream.services import process
from marketstream.services.gateway_process import GatewaySetup, spawn_warm_server
from marketstream.services.questdb_server import QuestDBPorts, start_questdb
from marketstream.tiers import clickhouse
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.cold_parquet import decode
from marketstream.tiers.cold_store import ColdStore
from marketstream.tiers.days import day_of_ns
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_partitions import HotTier
from marketstream.tiers.redis_bus import connect_async, stream_key
from marketstream.writers.hot_writer import HotWriter
from marketstream.writers.hot_writer_questdb import wal_applied
from tests.integration.endpoints import CONFIG_FILE, REPO, S3Endpoint

DAYS = 400
Truth = dict[str, dict[date, tuple[int, int]]]


@dataclass
class Tiers:
    config: PipelineConfig
    environ: dict[str, str]  # for `marketstream archive` in a subprocess
    state_dir: Path  # the archiver's lock and last run
    http: QuestDBHttp
    pg_url: str
    warm: WarmTier
    cold: ColdStore


def start_tiers(
    services_config: ServicesConfig,
    tmp_path_factory: pytest.TempPathFactory,
    s3: S3Endpoint,
    bucket: str,
) -> Iterator[Tiers]:
    """Start the archive test bed (use it as a module-scoped fixture); stop it after."""
    root = tmp_path_factory.mktemp("archive")
    with pytest.MonkeyPatch.context() as patch:  # QuestDB reads QDB_* from its environment
        patch.setenv("QDB_DEV_MODE_ENABLED", "true")  # ALTER TABLE ... SUSPEND WAL for tests
        questdb = start_questdb(
            services_config,
            root / "questdb",
            ports=QuestDBPorts.pick(),
            log_path=root / "questdb.log",
            pid_path=root / "questdb.pid",
        )
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    gateway = process.started(
        spawn_warm_server(
            root / "clickhouse",
            port=process.free_port(),
            log_path=root / "gateway.log",
            pid_path=root / "gateway.pid",
            setup=GatewaySetup(  # s3() may read the cold bucket, with the engine's own keys
                cold=f"s3://{bucket}/cold", s3=S3Config(endpoint_url=s3.endpoint_url)
            ),
            env={**os.environ, **keys},
        ),
        services_config.start_timeout_s,
    )
    s3.client.create_bucket(Bucket=bucket)
    environ = {
        "MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP": questdb.http_url,
        "MARKETSTREAM_ENDPOINTS__QUESTDB_PG": f"postgresql://127.0.0.1:{questdb.ports.pg}/qdb",
        "MARKETSTREAM_ENDPOINTS__CLICKHOUSE": gateway.url,
        "MARKETSTREAM_ENDPOINTS__COLD": f"s3://{bucket}/cold",
        "MARKETSTREAM_S3__ENDPOINT_URL": s3.endpoint_url,
        **keys,
    }
    config = load_config(CONFIG_FILE, environ=environ)
    client = clickhouse.connect(gateway.url)
    try:
        yield Tiers(
            config=config,
            environ=environ,
            state_dir=root / "state",
            http=QuestDBHttp(questdb.http_url),
            pg_url=environ["MARKETSTREAM_ENDPOINTS__QUESTDB_PG"],
            warm=WarmTier(client),
            cold=ColdStore.from_location(f"s3://{bucket}/cold", config.s3, environ),
        )
    finally:
        client.close()
        process.stop(gateway.process.pid, gateway.process.marker)
        process.stop(questdb.process.pid, questdb.process.marker)


def start_archived(  # noqa: PLR0917 - a fixture's inputs
    services_config: ServicesConfig,
    tmp_path_factory: pytest.TempPathFactory,
    s3: S3Endpoint,
    bucket: str,
    days: int,
    fill: Callable[[Tiers, date, date], object],
) -> Iterator[Tiers]:
    """The test bed with the `days` days up to today that `fill(bed, first, last)` writes,
    archived once with hot and warm horizons of 2 and 4 days: a range over all three tiers.
    Use it as a module-scoped fixture."""
    for bed in start_tiers(services_config, tmp_path_factory, s3, bucket):
        bed.environ |= {
            "MARKETSTREAM_HORIZONS__HOT_DAYS": "2",
            "MARKETSTREAM_HORIZONS__WARM_DAYS": "4",
        }
        last = utc_today()
        fill(bed, last - timedelta(days=days - 1), last)
        run = archive(bed, "--once")
        assert run.returncode == 0, run.stdout + run.stderr
        yield bed


def utc_today() -> date:
    return datetime.now(UTC).date()


def load(tiers: Tiers, history: HistoryConfig, start: date, end: date) -> Truth:
    summary = load_history(tiers.http, generate(history, start, end))
    wait_applied(tiers)
    return summary.truth


def write_hot(tiers: Tiers, redis_url: str, records: Sequence[Record]) -> Truth:
    """Publish records to an emptied Redis and let the real hot writer put them into these
    tiers' QuestDB; their truth per table and day once every one is queryable."""

    async def run() -> None:
        client = connect_async(redis_url)
        try:
            await client.flushdb()  # the writer takes every md:* stream: ours only
            pipe = client.pipeline(transaction=False)
            for record in records:
                key = stream_key(spec_of(record).table, record.exchange)
                pipe.execute_command("XADD", key, "*", "d", encode_record(record))
            await pipe.execute()
            hot = tiers.config.hot.model_copy(update={"metrics_port": 0, "batch_wait_ms": 10})
            config = tiers.config.model_copy(update={"hot": hot})
            writer = HotWriter(config, redis_url, tiers.http.base_url, consumer="archive-test")
            stop = asyncio.Event()
            task = asyncio.create_task(writer.run(stop))
            try:
                async with asyncio.timeout(120):
                    await writer.wait_drained(queryable=True)
            finally:
                stop.set()
                await asyncio.wait_for(task, 120)
        finally:
            await client.aclose()

    asyncio.run(run())
    return truth_of(records)


def truth_of(records: Iterable[Record]) -> Truth:
    by_day: dict[tuple[str, date], list[Record]] = {}
    for record in records:
        by_day.setdefault((spec_of(record).table, day_of_ns(record.ts)), []).append(record)
    truth: Truth = {}
    for (table, day), rows in by_day.items():
        spec = SPEC_BY_TABLE[table]
        truth.setdefault(table, {})[day] = key_checksum(spec, to_arrow(spec, rows))
    return truth


def merge_truth(into: Truth, more: Truth) -> None:
    """Add another source's rows of the same tables and days (key checksums add up)."""
    for table, days in more.items():
        for day, (rows, checksum) in days.items():
            old_rows, old_checksum = into.setdefault(table, {}).get(day, (0, 0))
            into[table][day] = (old_rows + rows, (old_checksum + checksum) % 2**64)


def wait_applied(tiers: Tiers) -> None:
    deadline = time.monotonic() + 60
    while not wal_applied(tiers.http):
        assert time.monotonic() < deadline, "QuestDB did not apply the generated rows in 60 s"
        time.sleep(0.05)


def archive_command(
    tiers: Tiers, *args: str, failpoint: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of `marketstream archive ARGS` on these tiers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    env |= tiers.environ
    if failpoint is not None:
        env[FAILPOINT_ENV] = failpoint
    argv = [sys.executable, "-m", "marketstream", "archive", *args]
    return [*argv, "--state-dir", str(tiers.state_dir)], env


def archive(
    tiers: Tiers, *args: str, failpoint: str | None = None, timeout_s: float = 900
) -> subprocess.CompletedProcess[str]:
    argv, env = archive_command(tiers, *args, failpoint=failpoint)
    return subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def hot_days(tiers: Tiers, spec: TableSpec) -> dict[date, tuple[int, int]]:
    hot = HotTier(tiers.http)
    return {day: key_checksum(spec, hot.read_day(spec, day)) for day in hot.partitions(spec)}


def warm_days(tiers: Tiers, spec: TableSpec) -> dict[date, tuple[int, int]]:
    return {day: tiers.warm.day_checksum(spec, day) for day in tiers.warm.partitions(spec)}


def cold_days(tiers: Tiers, spec: TableSpec) -> dict[date, tuple[int, int]]:
    days: dict[date, tuple[int, int]] = {}
    for part in tiers.cold.partitions(spec.table):
        data = tiers.cold.read_partition(spec.table, part.exchange, part.day)
        assert data is not None
        rows, checksum = key_checksum(spec, conform(spec, decode(data)))
        old_rows, old_checksum = days.get(part.day, (0, 0))
        days[part.day] = (old_rows + rows, (old_checksum + checksum) % 2**64)
    return days


def assert_tiered(tiers: Tiers, truth: Truth) -> None:
    """Every day in exactly the tier its age says, holding exactly the generated rows."""
    now = datetime.now(UTC).timestamp() * 1e9
    hot_horizon = horizon_day(int(now), tiers.config.horizons.hot_days)
    warm_horizon = horizon_day(int(now), tiers.config.horizons.warm_days)
    for table, days in truth.items():
        spec = SPEC_BY_TABLE[table]
        hot, warm, cold = hot_days(tiers, spec), warm_days(tiers, spec), cold_days(tiers, spec)
        assert not set(hot) & set(warm)
        assert not set(warm) & set(cold)
        assert not set(hot) & set(cold)
        assert all(day >= hot_horizon for day in hot), table
        assert all(warm_horizon <= day < hot_horizon for day in warm), table
        assert all(day < warm_horizon for day in cold), table
        found = hot | warm | cold
        assert found == {day: value for day, value in days.items() if value[0] > 0}, table


def symbol_day(tiers: Tiers, spec: TableSpec, day: date, symbols: Sequence[str]) -> tuple[int, int]:
    """(rows, checksum) of these symbols' rows of a day, summed over every tier with any."""
    tables = [tiers.warm.read_day(spec, day)]
    hot = HotTier(tiers.http)
    if day in hot.partitions(spec):
        tables.append(hot.read_day(spec, day))
    for part in tiers.cold.partitions(spec.table):
        if part.day == day:
            data = tiers.cold.read_partition(spec.table, part.exchange, day)
            assert data is not None
            tables.append(conform(spec, decode(data)))
    rows = checksum = 0
    for table in tables:
        mine = table.filter(pc.is_in(table.column("symbol"), pa.array(symbols, pa.string())))
        n, c = key_checksum(spec, mine)
        rows, checksum = rows + n, (checksum + c) % 2**64
    return rows, checksum
