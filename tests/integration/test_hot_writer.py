"""The hot writer against a real Redis and a real QuestDB: nothing lost, nothing doubled.

Every claim is proven by counting: rows in QuestDB against records published, distinct dedup
keys against rows, pending and undelivered entries in the consumer group, entries in md:dlq.
Waits are bounded polls; nothing asserts on time. Tests that stop QuestDB or alter a table
start a QuestDB of their own, since the session's is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, get_args

import msgspec.structs
import pytest
import redis.asyncio

from marketstream.cli import main
from marketstream.config import PipelineConfig, ServicesConfig
from marketstream.errors import ServiceError
from marketstream.schemas.codec import encode_entry, encode_record
from marketstream.schemas.columns import SPEC_BY_TABLE, SPECS, spec_of
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Instrument,
    InstrumentKind,
    Liquidation,
    OpenInterest,
    Quote,
    Record,
    Trade,
)
from marketstream.services import process
from marketstream.services.questdb_server import QuestDBPorts, QuestDBServer, start_questdb
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_rows import records_from_result
from marketstream.tiers.questdb_tables import create_all_sql
from marketstream.tiers.redis_bus import DLQ_STREAM, HOT_WRITER_GROUP, read_range, stream_key
from marketstream.writers.hot_writer import HotWriter
from marketstream.writers.hot_writer_questdb import RowSink
from tests.integration.endpoints import CONFIG_FILE, REPO, QuestDBEndpoints

pytestmark = pytest.mark.integration

WAIT_S = 120.0  # a bound for every wait on a loaded machine, never a timing assertion
POLL_S = 0.05
T0 = time.time_ns() - 3_600 * 10**9  # an hour ago: inside the hot horizon, today's partitions
MS = 1_000_000
MAX_DESIGNATED_TS = 9_214_646_399_999_999_999  # QuestDB refuses a designated timestamp above


# --- records and streams -------------------------------------------------------------------


def trades(exchange: str, n: int, start: int = 0) -> list[Record]:
    return [
        Trade(exchange, "BTC-USDT", T0 + i * MS, T0 + i * MS + 7, f"{exchange}-{i}",
              100.0 + i % 50, 0.25 + i % 3, "buy" if i % 2 else "sell")
        for i in range(start, start + n)
    ]  # fmt: skip


def quotes(exchange: str, n: int) -> list[Record]:
    return [
        Quote(exchange, "ETH-USDT", T0 + i * MS, T0 + i * MS + 3, 3000.0, 1.0, 3000.5,
              None if i % 4 == 0 else 2.0, None if i % 2 else 3000.2)
        for i in range(n)
    ]  # fmt: skip


def candles(exchange: str, n: int, trade_count: int = 12) -> list[Record]:
    minute = 60_000 * MS
    return [
        Candle(exchange, "BTC-USDT", "1m", T0 + i * minute, 100.0, 101.0, 99.0, 100.5, 3.5,
               trade_count + i, i % 5 != 0)
        for i in range(n)
    ]  # fmt: skip


def books(exchange: str, n: int) -> list[Record]:
    return [
        Book(exchange, "BTC-USDT", T0 + i * MS, T0 + i * MS + 2, i,
             [(100.0 - k, 1.0 + k) for k in range(5)], [(100.5 + k, 2.0) for k in range(i % 6)])
        for i in range(n)
    ]  # fmt: skip


def funding(exchange: str, n: int) -> list[Record]:
    hour = 3_600_000 * MS
    return [
        Funding(exchange, "BTC-USDT-PERP", T0 - i * hour, 0.0001 * (i - 2), 97000.0, None,
                T0 + hour)
        for i in range(n)
    ]  # fmt: skip


def liquidations(exchange: str, n: int) -> list[Record]:
    """Pairs at one moment, one of each side: no id tells them apart, their values do."""
    return [
        Liquidation(exchange, "BTC-USDT-PERP", T0 + i // 2 * MS, T0 + i // 2 * MS + 9,
                    "buy" if i % 2 else "sell", 97000.0 + i // 2, 0.001 * (1 + i % 7))
        for i in range(n)
    ]  # fmt: skip


def open_interest(exchange: str, n: int) -> list[Record]:
    return [
        OpenInterest(exchange, "ETH-USDT-PERP", T0 + i * 1000 * MS, T0 + i * 1000 * MS + 4,
                     250_000.0 + i, None if i % 3 == 0 else (250_000.0 + i) * 3000.0)
        for i in range(n)
    ]  # fmt: skip


def instruments(exchange: str, n: int) -> list[Record]:
    """One refresh of n instruments, every kind, then a second read of the first one."""
    kinds: tuple[InstrumentKind, ...] = get_args(InstrumentKind)
    refresh = [
        Instrument(exchange, f"C{i}-USD" + ("" if i % 5 == 0 else "-PERP"), T0, f"C{i}USD",
                   kinds[i % 5], f"C{i}", "USD", "USD" if i % 5 in (0, 1, 3) else f"C{i}",
                   0.01 * (1 + i % 3), 1.0, 0.1, 0.001, T0 + i * 10**12 if i % 5 >= 3 else None,
                   "trading" if i % 7 else "halted")
        for i in range(n)
    ]  # fmt: skip
    return [*refresh, msgspec.structs.replace(refresh[0], ts=T0 + 60_000 * MS, status="halted")]


def key_of(record: Record) -> str:
    return stream_key(spec_of(record).table, record.exchange)


async def publish(client: redis.asyncio.Redis, records: Sequence[Record]) -> None:
    pipe = client.pipeline(transaction=False)
    for record in records:
        pipe.execute_command("XADD", key_of(record), "*", "d", encode_record(record))
    await pipe.execute()


class Feeder:
    """Publishes trades in small chunks from a task of its own, like an exchange that keeps
    trading, from `async with` until finish() (or the block's end, also on failure)."""

    def __init__(self, client: redis.asyncio.Redis, exchange: str, *, pause_s: float = 0.005):
        self.client = client
        self.exchange = exchange
        self.pause_s = pause_s
        self.published = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Feeder:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.finish()

    async def finish(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, WAIT_S)

    async def _run(self, chunk: int = 20) -> None:
        while not self._stop.is_set():
            await publish(self.client, trades(self.exchange, chunk, start=self.published))
            self.published += chunk
            await asyncio.sleep(self.pause_s)


# --- waiting, reading back -----------------------------------------------------------------


async def until(
    predicate: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = WAIT_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = predicate()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(POLL_S)


def hot_config(base: PipelineConfig, **hot: Any) -> PipelineConfig:
    """Small batches and short intervals, so that tests exercise many batches quickly."""
    settings: dict[str, Any] = {
        "batch_size": 500,
        "batch_wait_ms": 10,
        "claim_idle_ms": 600_000,
        "refresh_interval_s": 0.2,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.5,
        "metrics_port": 0,
        **hot,
    }
    return base.model_copy(update={"hot": base.hot.model_copy(update=settings)})


@contextlib.asynccontextmanager
async def running(writer: HotWriter) -> AsyncIterator[asyncio.Task[None]]:
    """The writer's run() as a task; stopped (and its error raised) on leaving."""
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def drained(writer: HotWriter, task: asyncio.Task[None]) -> None:
    """Every stream written and acknowledged, and QuestDB's WAL applied (queryable)."""
    waiter = asyncio.ensure_future(writer.wait_drained(queryable=True, poll_s=POLL_S))
    done, _ = await asyncio.wait({waiter, task}, timeout=WAIT_S, return_when="FIRST_COMPLETED")
    if waiter not in done:
        waiter.cancel()
        if task in done:
            task.result()  # raises what stopped the writer
            pytest.fail("the writer stopped before the streams were drained")
        pytest.fail(f"the streams were not drained within {WAIT_S:g} s")


def sample(writer: HotWriter, name: str, **labels: str) -> float:
    value = writer.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def scalar(http: QuestDBHttp, sql: str) -> int:
    return int(http.exec(sql)["dataset"][0][0])


def _in(exchanges: Sequence[str]) -> str:
    return "exchange IN (" + ", ".join(f"'{e}'" for e in exchanges) + ")"


def row_count(http: QuestDBHttp, table: str, exchanges: Sequence[str]) -> int:
    return scalar(http, f"SELECT count() FROM {table} WHERE {_in(exchanges)}")


def distinct_keys(http: QuestDBHttp, table: str, exchanges: Sequence[str]) -> int:
    keys = ", ".join(SPEC_BY_TABLE[table].dedup_keys)
    return scalar(
        http,
        f"SELECT count() FROM (SELECT DISTINCT {keys} FROM {table} WHERE {_in(exchanges)})",
    )


def assert_exactly_once(
    http: QuestDBHttp, published: Sequence[Record], exchanges: Sequence[str]
) -> None:
    """As many rows per table as records published, and no two rows share a dedup key."""
    expected = Counter(spec_of(r).table for r in published)
    for table in sorted(expected):
        assert (table, row_count(http, table, exchanges)) == (table, expected[table])
        assert (table, distinct_keys(http, table, exchanges)) == (table, expected[table])


async def group_of(client: redis.asyncio.Redis, key: str) -> dict[str, Any]:
    groups = await client.xinfo_groups(key)
    [group] = [g for g in groups if g["name"] == HOT_WRITER_GROUP.encode()]
    return dict(group)


async def consumer_pending(client: redis.asyncio.Redis, key: str, consumer: str) -> int:
    for info in await client.xinfo_consumers(key, HOT_WRITER_GROUP):
        if info["name"] == consumer.encode():
            return int(info["pending"])
    return 0


async def assert_fully_acknowledged(client: redis.asyncio.Redis, keys: Sequence[str]) -> None:
    for key in keys:
        group = await group_of(client, key)
        length = await client.xlen(key)
        assert (key, group["pending"], group["lag"], group["entries-read"]) == (key, 0, 0, length)


class OwnQuestDB:
    """A QuestDB for one test, on fixed ports, so that it can be stopped and started again
    with the same URL and data directory."""

    def __init__(self, services: ServicesConfig, root: Path) -> None:
        self.services = services
        self.root = root
        self.ports = QuestDBPorts.pick()
        self.server: QuestDBServer | None = None
        self.http = QuestDBHttp(f"http://{process.LOOPBACK}:{self.ports.http}")

    @property
    def http_url(self) -> str:
        return self.http.base_url

    def start(self) -> None:
        try:
            self.server = start_questdb(
                self.services,
                self.root / "questdb",
                ports=self.ports,
                log_path=self.root / "logs" / "questdb.log",
                pid_path=self.root / "run" / "questdb.pid",
            )
        except ServiceError as exc:
            problem = f"the test's own QuestDB could not start: {exc}"
        else:
            return
        pytest.fail(problem, pytrace=False)

    def stop(self) -> None:
        if self.server is not None:
            process.stop(self.server.process.pid, self.server.process.marker)
            self.server = None


@pytest.fixture
def own_questdb(services_config: ServicesConfig, tmp_path: Path) -> Iterator[OwnQuestDB]:
    questdb = OwnQuestDB(services_config, tmp_path)
    questdb.start()
    yield questdb
    questdb.stop()


@pytest.fixture(scope="module", autouse=True)
def drop_tables_afterwards(questdb: QuestDBEndpoints) -> Iterator[None]:
    """The session's QuestDB is shared and other modules count whole tables: drop what the
    writers created here; whoever needs the tables next creates them, as every module does."""
    yield
    for spec in SPECS:
        questdb.http.exec(f"DROP TABLE IF EXISTS {spec.table}")


# --- the tests -----------------------------------------------------------------------------


async def test_every_record_lands_exactly_once(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    a, b, late = "hw-once-a", "hw-once-b", "hw-once-late"
    before = [
        *trades(a, 3000), *quotes(a, 800), *candles(a, 60), *books(a, 200),
        *funding(b, 30), *trades(b, 1000), *liquidations(a, 120), *open_interest(b, 90),
        *instruments(b, 40),
    ]  # fmt: skip
    after = [
        *trades(a, 2000, start=3000), *trades(late, 700), *books(b, 100),
        *liquidations(late, 30), *open_interest(late, 10), *instruments(late, 5),
    ]  # fmt: skip
    await publish(client, before)
    # Small flushes: a batch of 500 goes out in several, acknowledged after the last.
    config = hot_config(pipeline_config, flush_max_bytes=16_384)
    writer = HotWriter(config, redis_url, questdb.http_url, consumer="once")
    async with running(writer) as task:
        await until(lambda: bool(writer.streams), "the writer found the streams")
        await publish(client, after)  # into running streams and one that did not exist at start
        await drained(writer, task)
        metrics = await asyncio.to_thread(_get, writer, "/metrics")
        health = await asyncio.to_thread(_get, writer, "/healthz")
    assert b"marketstream_hot_write_seconds_bucket" in metrics
    assert b'marketstream_hot_records_total{table="books"} 300.0' in metrics
    assert b'"status":"ok"' in health
    assert b'"consumer":"once"' in health

    published = before + after
    assert_exactly_once(questdb.http, published, (a, b, late))
    for table, n in Counter(spec_of(r).table for r in published).items():
        assert (table, sample(writer, "marketstream_hot_records_total", table=table)) == (table, n)
    for spec in SPECS:  # every value, every nanosecond, of every table
        answer = questdb.http.exec(f"SELECT * FROM {spec.table} WHERE {_in((a, b, late))}")
        back = records_from_result(spec, [c["name"] for c in answer["columns"]], answer["dataset"])
        sent = [r for r in published if spec_of(r) is spec]
        assert (spec.table, sorted(back, key=repr)) == (spec.table, sorted(sent, key=repr))
    sent = [r for r in published if isinstance(r, Trade)]
    await assert_fully_acknowledged(client, sorted({key_of(r) for r in published}))
    assert await client.xlen(DLQ_STREAM) == 0
    assert sample(writer, "marketstream_hot_freshness_seconds_count", table="trades") == len(sent)
    flushes = sample(writer, "marketstream_hot_write_seconds_count")
    assert flushes > sample(writer, "marketstream_hot_batch_entries_count")


def _get(writer: HotWriter, path: str) -> bytes:
    url = f"http://{writer.settings.metrics_host}:{writer.metrics_port}{path}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body


async def test_replayed_entries_write_nothing_twice(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    exchange = "hw-replay"
    records = [
        *trades(exchange, 1500), *books(exchange, 200), *quotes(exchange, 300),
        *liquidations(exchange, 100), *open_interest(exchange, 50), *instruments(exchange, 20),
    ]  # fmt: skip
    writer = HotWriter(hot_config(pipeline_config), redis_url, questdb.http_url)
    async with running(writer) as task:
        await publish(client, records)
        await drained(writer, task)
        assert_exactly_once(questdb.http, records, (exchange,))
        await publish(client, records)  # the same content again, as new entries: a replay
        await drained(writer, task)

    assert_exactly_once(questdb.http, records, (exchange,))
    for table, n in Counter(spec_of(r).table for r in records).items():
        # Both passes were written and confirmed; the dedup keys absorbed the second.
        assert sample(writer, "marketstream_hot_records_total", table=table) == 2 * n
    keys = sorted({key_of(r) for r in records})
    assert sum([await client.xlen(key) for key in keys]) == 2 * len(records)
    await assert_fully_acknowledged(client, keys)


def _writer_env(redis_url: str, questdb_url: str, **hot: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    env.update(
        MARKETSTREAM_CONFIG=str(CONFIG_FILE),
        MARKETSTREAM_ENDPOINTS__REDIS=redis_url,
        MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP=questdb_url,
        MARKETSTREAM_HOT__REFRESH_INTERVAL_S="0.2",
    )
    env.update({f"MARKETSTREAM_HOT__{name.upper()}": value for name, value in hot.items()})
    return env


def _spawn_writer(env: dict[str, str], consumer: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{consumer}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "marketstream", "write-hot", "--consumer", consumer,
         "--metrics-port", "0", "--state-dir", str(tmp_path / "state")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def _stop_holding_entries(
    client: redis.asyncio.Redis, writer: subprocess.Popen[bytes], key: str, consumer: str
) -> int:
    """SIGSTOP the writer at a moment it holds delivered, unacknowledged entries; how many.

    A command the writer sent just before it stopped (an XACK, an XREADGROUP) may still reach
    Redis after the signal: the count is read again until two reads agree."""
    for _ in range(500):
        writer.send_signal(signal.SIGSTOP)
        pending = await _settled_pending(client, key, consumer)
        if pending:
            return pending
        writer.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.01)
    pytest.fail(f"never caught {consumer} with entries in hand")


async def _settled_pending(client: redis.asyncio.Redis, key: str, consumer: str) -> int:
    pending = await consumer_pending(client, key, consumer)
    while True:
        await asyncio.sleep(0.05)
        again = await consumer_pending(client, key, consumer)
        if again == pending:
            return pending
        pending = again


@pytest.mark.parametrize("takeover", ["restart-same-name", "another-writer-claims"])
async def test_a_killed_writer_loses_nothing_and_doubles_nothing(  # noqa: PLR0917 - fixtures
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
    tmp_path: Path,
    takeover: str,
) -> None:
    exchange = f"hw-kill-{takeover.partition('-')[0]}"
    key = stream_key("trades", exchange)
    env = _writer_env(redis_url, questdb.http_url, batch_size="100", batch_wait_ms="50")
    restart = takeover == "restart-same-name"
    config = hot_config(pipeline_config, claim_idle_ms=600_000 if restart else 300)
    writer = HotWriter(
        config, redis_url, questdb.http_url, consumer="victim" if restart else "rescuer"
    )
    async with Feeder(client, exchange) as feeder:  # records arrive across kill and takeover
        victim = _spawn_writer(env, "victim", tmp_path)
        try:
            await until(lambda: _entries_read(client, key, at_least=500), "the victim writes")
            in_hand = await _stop_holding_entries(client, victim, key, "victim")
            victim.kill()  # SIGKILL: no shutdown, no flush, no ack
            victim.wait(timeout=WAIT_S)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait(timeout=WAIT_S)
        assert victim.returncode == -signal.SIGKILL
        assert in_hand > 0

        async with running(writer) as task:
            written = "marketstream_hot_records_total"
            await until(lambda: sample(writer, written, table="trades") > 0, "the writer writes")
            await feeder.finish()
            await drained(writer, task)

    sent = trades(exchange, feeder.published)
    assert_exactly_once(questdb.http, sent, (exchange,))
    how = "own-pending" if restart else "claimed"
    # Everything the victim held was taken up again, the way this case says, and nothing else.
    assert sample(writer, "marketstream_hot_recovered_entries_total", how=how) >= in_hand
    other = "claimed" if restart else "own-pending"
    assert sample(writer, "marketstream_hot_recovered_entries_total", how=other) == 0
    assert await consumer_pending(client, key, "victim") == 0
    await assert_fully_acknowledged(client, [key])


async def _entries_read(client: redis.asyncio.Redis, key: str, *, at_least: int) -> bool:
    if not await client.exists(key):
        return False
    try:
        group = await group_of(client, key)
    except ValueError:  # the group is not there yet
        return False
    return int(group["entries-read"] or 0) >= at_least


async def test_the_next_batch_is_read_while_a_write_is_in_flight(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first flush is held until the test lets it go: meanwhile the writer reads the
    next batch (and no more), then everything is written once. Held, a writer that reads only
    between writes stays at one batch read."""
    exchange = "hw-overlap"
    key = stream_key("trades", exchange)
    sent = trades(exchange, 300)
    await publish(client, sent)  # three batches waiting before the writer starts
    release = asyncio.Event()
    held: list[int] = []
    flush = RowSink._flush

    async def held_first(sink: RowSink, written: Any, outcome: Any) -> Any:
        if not held:
            held.append(sum(len(rows.ts) for rows in written))
            await release.wait()
        return await flush(sink, written, outcome)

    monkeypatch.setattr(RowSink, "_flush", held_first)
    config = hot_config(pipeline_config, batch_size=100)
    writer = HotWriter(config, redis_url, questdb.http_url, consumer="overlap")
    async with running(writer) as task:
        await until(lambda: bool(held), "the first flush is held")
        await until(
            lambda: _entries_read(client, key, at_least=200), "the next batch is read meanwhile"
        )
        await asyncio.sleep(0.5)  # not a timing assertion: room to read a third batch, wrongly
        group = await group_of(client, key)
        assert held == [100]
        assert group["entries-read"] == 200  # the batch being written and the next one
        assert writer.health()[1]["in_hand"] == 200
        release.set()
        await drained(writer, task)
    assert_exactly_once(questdb.http, sent, (exchange,))
    await assert_fully_acknowledged(client, [key])


async def test_a_burst_is_written_once_the_streams_go_quiet(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    """A batch far from full is due `batch_quiet_ms` after its last entry, long before
    `batch_wait_ms` (here beyond every wait of the test, so only the quiet rule can write it)."""
    exchange = "hw-quiet"
    sent = trades(exchange, 30)
    config = hot_config(pipeline_config, batch_wait_ms=600_000, batch_quiet_ms=50)
    writer = HotWriter(config, redis_url, questdb.http_url, consumer="quiet")
    async with running(writer) as task:
        await publish(client, sent)
        await drained(writer, task)
    assert_exactly_once(questdb.http, sent, (exchange,))
    assert sample(writer, "marketstream_hot_batch_entries_count") == 1


async def test_a_flow_that_keeps_coming_fills_one_batch(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    """Entries arriving in bursts closer together than `batch_quiet_ms` keep the batch open
    (one QuestDB transaction for all of them), until the flow stops."""
    exchange = "hw-flow"
    sent = trades(exchange, 100)
    config = hot_config(pipeline_config, batch_wait_ms=600_000, batch_quiet_ms=3_000)
    writer = HotWriter(config, redis_url, questdb.http_url, consumer="flow")
    async with running(writer) as task:
        for start in range(0, len(sent), 20):
            await publish(client, sent[start : start + 20])
            await asyncio.sleep(0.02)  # a gap far inside the quiet window
        await drained(writer, task)
    assert_exactly_once(questdb.http, sent, (exchange,))
    assert sample(writer, "marketstream_hot_batch_entries_count") == 1
    assert sample(writer, "marketstream_hot_batch_entries_sum") == len(sent)


async def test_questdb_down_for_a_while_loses_nothing(
    client: redis.asyncio.Redis,
    redis_url: str,
    own_questdb: OwnQuestDB,
    pipeline_config: PipelineConfig,
) -> None:
    exchange = "hw-outage"
    key = stream_key("trades", exchange)
    config = hot_config(pipeline_config, batch_size=200)
    writer = HotWriter(config, redis_url, own_questdb.http_url, consumer="outage")
    async with Feeder(client, exchange, pause_s=0.01) as feeder, running(writer) as task:
        await until(lambda: sample(writer, "marketstream_hot_records_total", table="trades") > 0,
                    "the first records are written")  # fmt: skip
        await asyncio.to_thread(own_questdb.stop)  # SIGTERM; records keep arriving
        await until(lambda: sample(writer, "marketstream_hot_retries_total", cause="questdb") > 0,
                    "the writer notices QuestDB is gone")  # fmt: skip
        lag = "marketstream_hot_stream_lag"
        await until(lambda: sample(writer, lag, stream=key) > 0, "the lag gauge shows the backlog")
        read_when_down = (await group_of(client, key))["entries-read"]
        published_when_down = feeder.published
        await asyncio.sleep(10)  # the outage; not a timing assertion
        group = await group_of(client, key)
        # While QuestDB was away the writer read the next batch at most (the feeder published
        # several batches meanwhile), then nothing more: two batches in hand, the rest waits.
        assert feeder.published - published_when_down > 2 * config.hot.batch_size
        assert group["entries-read"] <= read_when_down + config.hot.batch_size
        assert 0 < group["pending"] <= 2 * config.hot.batch_size
        await asyncio.sleep(2)
        assert (await group_of(client, key))["entries-read"] == group["entries-read"]
        detail = writer.health()[1]
        assert detail["failing_for_s"] > 0
        assert detail["last_error"].startswith("questdb")
        await asyncio.to_thread(own_questdb.start)  # same ports, same data directory
        await feeder.finish()
        await drained(writer, task)

    assert_exactly_once(own_questdb.http, trades(exchange, feeder.published), (exchange,))
    await assert_fully_acknowledged(client, [key])
    assert writer.health()[0]


async def test_rejected_and_undecodable_entries_go_to_the_dlq_after_which_they_are_acked(
    client: redis.asyncio.Redis,
    redis_url: str,
    own_questdb: OwnQuestDB,
    pipeline_config: PipelineConfig,
) -> None:
    http = own_questdb.http
    for sql in create_all_sql():
        http.exec(sql)
    # A type conflict: a count that fits LONG but not SHORT is refused from now on.
    http.exec("ALTER TABLE candles ALTER COLUMN trades TYPE SHORT")
    await until(lambda: _column_type(http, "candles", "trades") == "SHORT", "the ALTER applied")

    exchange = "hw-dlq"
    good_trades = trades(exchange, 400)
    too_late = [
        Trade(exchange, "BTC-USDT", MAX_DESIGNATED_TS + 1 + i, T0, f"late-{i}", 1.0, 1.0, "buy")
        for i in range(3)
    ]
    trade_stream = [too_late[0], *good_trades[:200], too_late[1], *good_trades[200:], too_late[2]]
    good_candles = candles(exchange, 50)
    too_many = [  # more trades in a bar than SHORT holds
        Candle(exchange, "BTC-USDT", "5m", T0 + i * 300_000 * MS, 100.0, 101.0, 99.0, 100.5,
               3.5, 100_000 + i, True)
        for i in range(2)
    ]  # fmt: skip
    candle_stream = [*good_candles[:25], *too_many, *good_candles[25:]]
    garbage: list[tuple[str, dict[bytes, bytes]]] = [
        (stream_key("trades", exchange), {b"d": b"{not json"}),
        (stream_key("quotes", exchange), {b"x": b"no d field"}),
        (stream_key("candles", exchange), {b"d": b'{"type":"candle","exchange":"hw-dlq"}'}),
    ]
    await client.set(DLQ_STREAM, b"not a stream")  # dead letters cannot be written for now
    await publish(client, trade_stream + candle_stream)
    for stream, fields in garbage:
        await client.xadd(stream, fields)  # type: ignore[arg-type]
    entries = len(trade_stream) + len(candle_stream) + len(garbage)
    dead = len(too_late) + len(too_many) + len(garbage)
    keys = sorted({stream for stream, _ in garbage})

    # One batch holds every entry (waiting long for it to fill keeps it one), written in
    # several small flushes, so that rejected rows are isolated inside and across them.
    config = hot_config(
        pipeline_config,
        batch_size=entries,
        batch_wait_ms=60_000,
        batch_quiet_ms=60_000,
        flush_max_bytes=8_192,
    )
    writer = HotWriter(config, redis_url, own_questdb.http_url)
    async with running(writer) as task:
        await until(lambda: sample(writer, "marketstream_hot_retries_total", cause="redis") > 0,
                    "the writer tried md:dlq")  # fmt: skip
        pending = [(await group_of(client, k))["pending"] for k in keys]
        # The good records are acknowledged; those bound for md:dlq wait for it.
        assert sum(pending) == dead
        await client.delete(DLQ_STREAM)
        await drained(writer, task)

    assert_exactly_once(http, [*good_trades, *good_candles], (exchange,))
    assert sample(writer, "marketstream_hot_records_total", table="trades") == len(good_trades)
    assert sample(writer, "marketstream_hot_records_total", table="candles") == len(good_candles)
    assert sample(writer, "marketstream_hot_dlq_total", cause="rejected") == 5
    assert sample(writer, "marketstream_hot_dlq_total", cause="undecodable") == 3
    letters = [fields for _, fields in await read_range(client, DLQ_STREAM)]
    assert len(letters) == dead
    by_frame = {letter[b"frame"]: letter for letter in letters}
    for late in too_late:
        letter = by_frame[encode_entry(late)[b"d"]]
        assert b"designated timestamp" in letter[b"reason"]
        assert letter[b"record"] == letter[b"frame"]
        assert letter[b"stream"] == key_of(late).encode()
    for candle in too_many:
        letter = by_frame[encode_entry(candle)[b"d"]]
        assert b"SHORT" in letter[b"reason"]
        assert letter[b"exchange"] == exchange.encode()
    for stream, fields in garbage:
        letter = by_frame[fields.get(b"d", repr(fields).encode())]
        assert letter[b"reason"].startswith(b"not a record")
        assert b"record" not in letter
        assert letter[b"stream"] == stream.encode()
    await assert_fully_acknowledged(client, keys)


def _column_type(http: QuestDBHttp, table: str, column: str) -> str:
    answer = http.exec(f"SELECT \"column\", type FROM table_columns('{table}')")
    return str(dict(answer["dataset"])[column])


async def test_sigterm_finishes_the_batch_in_hand_and_exits_0(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    tmp_path: Path,
) -> None:
    exchange = "hw-sigterm"
    key = stream_key("trades", exchange)
    env = _writer_env(redis_url, questdb.http_url, batch_size="50", batch_wait_ms="20")
    async with Feeder(client, exchange) as feeder:
        writer = _spawn_writer(env, "polite", tmp_path)
        try:
            await until(lambda: _entries_read(client, key, at_least=300), "the writer writes")
            writer.send_signal(signal.SIGTERM)  # while records keep arriving
            returncode = await asyncio.to_thread(writer.wait, WAIT_S)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait(timeout=WAIT_S)
    log = (tmp_path / "polite.log").read_text()
    assert returncode == 0, log
    assert "hot writer polite stopped" in log
    group = await group_of(client, key)
    assert group["pending"] == 0  # the batch in hand was written and acknowledged...
    read = int(group["entries-read"])
    assert 0 < read < feeder.published  # ...and nothing read after the signal
    # Everything it read is in QuestDB, once each.
    await until(lambda: row_count(questdb.http, "trades", (exchange,)) >= read, "WAL applied")
    assert_exactly_once(questdb.http, trades(exchange, read), (exchange,))


def test_a_start_that_cannot_work_is_one_line_and_exit_2(
    redis_url: str,
    questdb: QuestDBEndpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed = f"{process.LOOPBACK}:{process.free_port()}"
    with socket.socket() as taken:
        taken.bind((process.LOOPBACK, 0))
        taken.listen()
        busy_port = str(taken.getsockname()[1])
        cases = [  # Redis down, the metrics port held by another process (QuestDB down: it
            # waits, see test_hot_writer_reliability)
            (f"redis://{closed}/0", questdb.http_url, "0", "Redis at", "unreachable"),
            (redis_url, questdb.http_url, busy_port, "hot writer metrics", "--metrics-port"),
        ]
        for redis_endpoint, questdb_endpoint, port, starts, says in cases:
            monkeypatch.setenv("MARKETSTREAM_CONFIG", str(CONFIG_FILE))
            monkeypatch.setenv("MARKETSTREAM_ENDPOINTS__REDIS", redis_endpoint)
            monkeypatch.setenv("MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP", questdb_endpoint)
            assert main(["write-hot", "--state-dir", str(tmp_path), "--metrics-port", port]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1, err
            assert err[0].startswith(f"marketstream: error: {starts}")
            assert says in err[0]
