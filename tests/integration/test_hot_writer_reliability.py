"""The hot writer when things go wrong, against a real Redis and a real QuestDB: a QuestDB
that is not there yet, a poison entry, trimming before any writer ran, failing tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from marketstream.cli import main
from marketstream.config import IngestConfig, PipelineConfig, ServicesConfig, StreamsConfig
from marketstream.errors import ServiceError
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import SPECS
from marketstream.schemas.records import Book, Record
from marketstream.tiers.redis_bus import DLQ_STREAM, read_range, stream_key
from marketstream.writers.hot_writer import HotWriter
from marketstream.writers.hot_writer_questdb import wal_states
from tests.integration.endpoints import CONFIG_FILE, QuestDBEndpoints
from tests.integration.test_hot_writer import (
    MS,
    T0,
    WAIT_S,
    OwnQuestDB,
    assert_exactly_once,
    assert_fully_acknowledged,
    drained,
    hot_config,
    publish,
    running,
    sample,
    trades,
    until,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def drop_tables_afterwards(questdb: QuestDBEndpoints) -> Iterator[None]:
    """The session's QuestDB is shared and other modules count whole tables."""
    yield
    for spec in SPECS:
        questdb.http.exec(f"DROP TABLE IF EXISTS {spec.table}")


# --- 3. trimmed before any writer ran: nothing lost ----------------------------------------


async def test_entries_trimmed_hard_before_any_writer_ran_all_reach_questdb(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    exchange = "hw-pretrim"
    sent = trades(exchange, 2000)
    settings = PublisherSettings.from_config(
        IngestConfig(publish_batch=50, publish_interval_ms=2),
        StreamsConfig(maxlen=50, trim_interval_s=0.001),
        (pipeline_config.hot.group,),
    )
    publisher = Publisher(client, settings, IngestMetrics())
    task = asyncio.create_task(publisher.run())
    for i, record in enumerate(sent):
        publisher.add(record)
        if i % 100 == 0:
            await asyncio.sleep(0.005)  # many flushes and trims, no writer anywhere
    await publisher.close()
    await asyncio.wait_for(task, WAIT_S)

    writer = HotWriter(hot_config(pipeline_config), redis_url, questdb.http_url)
    async with running(writer) as writer_task:
        await drained(writer, writer_task)
    assert_exactly_once(questdb.http, sent, (exchange,))
    await assert_fully_acknowledged(client, [stream_key("trades", exchange)])


# --- 4. started while QuestDB is down ------------------------------------------------------


async def test_a_writer_started_before_questdb_waits_for_it_then_writes(
    client: redis.asyncio.Redis,
    redis_url: str,
    services_config: ServicesConfig,
    pipeline_config: PipelineConfig,
    tmp_path: Path,
) -> None:
    own = OwnQuestDB(services_config, tmp_path)  # its ports picked, nothing listening yet
    exchange = "hw-late-questdb"
    sent = trades(exchange, 700)
    await publish(client, sent)
    writer = HotWriter(hot_config(pipeline_config), redis_url, own.http_url, consumer="early")
    try:
        async with running(writer) as task:
            retries = "marketstream_hot_retries_total"
            await until(lambda: sample(writer, retries, cause="questdb") >= 3, "retries")
            assert not task.done()  # waiting, not exited
            ok, detail = writer.health()
            assert not ok
            assert detail["questdb_ready"] is False
            assert detail["last_error"].startswith("questdb")
            await asyncio.to_thread(own.start)
            await drained(writer, task)
            assert writer.health()[0]
        assert_exactly_once(own.http, sent, (exchange,))
    finally:
        await asyncio.to_thread(own.stop)
    assert writer.written == len(sent)


# --- 5. a poison entry ---------------------------------------------------------------------

QUESTDB_REQUEST_LIMIT = 4 * 1024 * 1024  # line.http.max.recv.buffer.size of the test's QuestDB


async def test_an_entry_questdb_always_fails_on_goes_to_the_dlq_and_the_rest_goes_on(  # noqa: PLR0917 - fixtures
    client: redis.asyncio.Redis,
    redis_url: str,
    services_config: ServicesConfig,
    pipeline_config: PipelineConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A book row larger than QuestDB takes in one request: QuestDB resets the connection
    (not a `"code":"invalid"` answer) every time, while it answers everything else."""
    monkeypatch.setenv("QDB_LINE_HTTP_MAX_RECV_BUFFER_SIZE", str(QUESTDB_REQUEST_LIMIT))
    own = OwnQuestDB(services_config, tmp_path)
    own.start()
    exchange = "hw-poison"
    levels = [(100.0 + i * 0.01, 1.0) for i in range(200_000)]  # ~6 MB as ILP arrays
    poison = Book(exchange, "BTC-USDT", T0 + 5 * MS, T0 + 5 * MS, 1, levels, levels)
    good = trades(exchange, 600)
    stream: list[Record] = [*good[:300], poison, *good[300:]]
    await publish(client, stream)
    config = hot_config(pipeline_config, max_deliveries=3, flush_max_bytes=65_536)
    writer = HotWriter(config, redis_url, own.http_url, consumer="poisoned")
    try:
        async with running(writer) as task:
            await drained(writer, task)
            assert writer.health()[0]
        assert_exactly_once(own.http, good, (exchange,))
    finally:
        await asyncio.to_thread(own.stop)
    book_key = stream_key("books", exchange)
    await assert_fully_acknowledged(client, [book_key, stream_key("trades", exchange)])
    [(_, letter)] = await read_range(client, DLQ_STREAM)
    assert letter[b"stream"] == book_key.encode()
    [(book_id, _)] = await read_range(client, book_key)
    assert letter[b"id"] == book_id
    assert letter[b"frame"] == encode_record(poison)
    assert letter[b"reason"].startswith(b"delivered 4 times (hot.max_deliveries is 3)")
    assert b"QuestDB failed on the row" in letter[b"reason"]
    assert sample(writer, "marketstream_hot_dlq_total", cause="undeliverable") == 1
    assert sample(writer, "marketstream_hot_retries_total", cause="refused") == 3


async def test_an_entry_whose_writers_keep_dying_goes_to_the_dlq(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    """Delivered to writers that died with it in hand (re-read by name after each restart
    counts a delivery): past hot.max_deliveries it is not written but dead-lettered."""
    exchange = "hw-crashloop"
    key = stream_key("trades", exchange)
    [record] = trades(exchange, 1)
    await publish(client, [record])
    await client.xgroup_create(key, pipeline_config.hot.group, id="0")
    group = pipeline_config.hot.group
    await client.xreadgroup(group, "phoenix", {key: ">"})  # delivered: 1
    for _ in range(2):  # the writers named "phoenix" re-read it after restarts, and died
        await client.xreadgroup(group, "phoenix", {key: "0"})
    config = hot_config(pipeline_config, max_deliveries=3)
    writer = HotWriter(config, redis_url, questdb.http_url, consumer="phoenix")
    async with running(writer) as task:
        await drained(writer, task)  # its re-read is the fourth delivery
    [(_, letter)] = await read_range(client, DLQ_STREAM)
    assert letter[b"reason"].startswith(b"delivered 4 times")
    assert b"stopped with it in hand" in letter[b"reason"]
    assert writer.written == 0


# --- 2. no task dies silently --------------------------------------------------------------


async def test_a_failing_gauge_refresh_is_logged_counted_and_tried_again(  # noqa: PLR0917 - fixtures
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = wal_states
    calls = 0

    def flaky(http: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("dataset")  # e.g. an answer of a shape not foreseen
        return real(http)  # type: ignore[arg-type]

    monkeypatch.setattr("marketstream.writers.hot_writer.wal_states", flaky)
    exchange = "hw-watch"
    sent = trades(exchange, 200)
    writer = HotWriter(hot_config(pipeline_config), redis_url, questdb.http_url)
    async with running(writer) as task:
        await publish(client, sent)
        await drained(writer, task)
        await until(lambda: calls >= 3, "the gauges are refreshed after the failure")
        wal = "marketstream_hot_wal_unapplied_txns"
        assert writer.metrics.registry.get_sample_value(wal, {"table": "trades"}) is not None
    assert sample(writer, "marketstream_hot_task_errors_total", task="watch") == 1
    assert "gauges not refreshed" in caplog.text
    assert_exactly_once(questdb.http, sent, (exchange,))


def test_an_unexpected_error_in_the_write_loop_exits_2_with_the_cause_logged(  # noqa: PLR0917 - fixtures
    redis_url: str,
    questdb: QuestDBEndpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(entries: object) -> object:
        raise RuntimeError("boom in decode")

    monkeypatch.setattr("marketstream.writers.hot_writer.decode_batch", broken)
    sync = redis.Redis.from_url(redis_url)
    try:
        [record] = trades("hw-loop-bug", 1)
        sync.xadd(stream_key("trades", "hw-loop-bug"), {"d": encode_record(record)})
    finally:
        sync.close()
    monkeypatch.setenv("MARKETSTREAM_CONFIG", str(CONFIG_FILE))
    monkeypatch.setenv("MARKETSTREAM_ENDPOINTS__REDIS", redis_url)
    monkeypatch.setenv("MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP", questdb.http_url)
    monkeypatch.setenv("MARKETSTREAM_HOT__REFRESH_INTERVAL_S", "0.2")
    caplog.set_level(logging.ERROR)
    code = main(["write-hot", "--state-dir", str(tmp_path), "--metrics-port", "0"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("marketstream: error: hot writer")
    assert "boom in decode" in err[-1]
    logged = [r for r in caplog.records if r.exc_info and "unexpected error" in r.getMessage()]
    assert logged


async def test_healthz_reports_a_writer_stopped_by_an_unexpected_error(
    redis_url: str,
    questdb: QuestDBEndpoints,
    client: redis.asyncio.Redis,
    pipeline_config: PipelineConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(entries: object) -> object:
        raise RuntimeError("boom in decode")

    monkeypatch.setattr("marketstream.writers.hot_writer.decode_batch", broken)
    await publish(client, trades("hw-loop-health", 3))
    writer = HotWriter(hot_config(pipeline_config), redis_url, questdb.http_url)
    with pytest.raises(ServiceError, match="boom in decode"):
        await asyncio.wait_for(writer.run(asyncio.Event()), WAIT_S)
    ok, detail = writer.health()
    assert not ok
    assert "boom in decode" in detail["failure"]
