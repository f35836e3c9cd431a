"""Ingest under pressure, against a real redis-server: trimming races, groups declared before
the first entry, failing tasks, mapper bugs and reconnect backoff over real WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import orjson
import pytest
import redis.asyncio
from websockets.asyncio.server import ServerConnection, serve

from marketstream.config import IngestConfig, PipelineConfig, StreamsConfig
from marketstream.errors import ServiceError
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.processor import FrameProcessor
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.ingest.runner import Connection, RunnerSettings
from marketstream.ingest.service import IngestService, make_processor, plan_connections
from marketstream.schemas.records import Trade
from marketstream.services import process
from marketstream.tiers.redis_bus import (
    DLQ_STREAM,
    HOT_WRITER_GROUP,
    Entry,
    connect_async,
    read_range,
    trim_stream,
)
from marketstream.venues.base.venue import Subscription
from marketstream.venues.registry import get_venue

pytestmark = pytest.mark.integration

WAIT_S = 120.0  # a bound for waits on a loaded machine, never a timing assertion
T0 = time.time_ns() - 3_600 * 10**9


def trade(i: int, exchange: str = "binance") -> Trade:
    return Trade(exchange, "BTC-USDT", T0 + i, T0 + i + 1, str(i), 100.0, 1.0, "buy")


async def until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {WAIT_S:g} s")
        await asyncio.sleep(0.02)


# --- 1. trim_stream beside a consumer that acknowledges ------------------------------------


class AckBeforeXPending(redis.asyncio.Redis):
    """A client whose XPENDING runs just after another client acknowledged every pending
    entry: the window between XINFO GROUPS and XPENDING in `trim_stream`, made certain."""

    other: redis.asyncio.Redis

    async def xpending(self, name: Any, groupname: Any) -> Any:
        for entry in await self.other.xpending_range(name, groupname, "-", "+", 10_000):
            await self.other.xack(name, groupname, entry["message_id"])
        return await super().xpending(name, groupname)


async def test_trim_survives_everything_acknowledged_between_xinfo_and_xpending(
    client: redis.asyncio.Redis, redis_url: str
) -> None:
    key = "md:{race}:trades"
    for i in range(100):
        await client.xadd(key, {"d": str(i)})
    await client.xgroup_create(key, HOT_WRITER_GROUP, id="0")
    await client.xreadgroup(HOT_WRITER_GROUP, "w", {key: ">"}, count=60)  # 60 pending
    racing = cast(AckBeforeXPending, AckBeforeXPending.from_url(redis_url))
    racing.other = client
    try:
        removed = await trim_stream(racing, key, maxlen=10)
    finally:
        await racing.aclose()
    # All 60 were acknowledged by the time of the cut; the 40 never delivered are kept.
    assert removed == 60
    assert await client.xlen(key) == 40


async def test_a_trim_loop_beside_a_consumer_never_fails_nor_drops_an_unread_entry(
    client: redis.asyncio.Redis, redis_url: str
) -> None:
    key = "md:{trimloop}:trades"
    total = 6000
    await client.xgroup_create(key, HOT_WRITER_GROUP, id="0", mkstream=True)
    trimmer = connect_async(redis_url)
    done = asyncio.Event()
    trims = 0
    removed = 0

    async def produce() -> None:
        for start in range(0, total, 20):
            pipe = client.pipeline(transaction=False)
            for i in range(start, start + 20):
                pipe.xadd(key, {"d": str(i)})
            await pipe.execute()
            await asyncio.sleep(0)

    async def consume() -> list[int]:
        seen: list[int] = []
        while len(seen) < total:
            reply = await client.xreadgroup(HOT_WRITER_GROUP, "c", {key: ">"}, count=7, block=50)
            for _, entries in cast(list[tuple[bytes, list[Entry]]], reply or []):
                ids = [entry_id for entry_id, _ in entries]
                seen.extend(int(fields[b"d"]) for _, fields in entries)
                if ids:
                    await client.xack(key, HOT_WRITER_GROUP, *ids)
        done.set()
        return seen

    async def trim() -> None:
        nonlocal trims, removed
        while not done.is_set():
            removed += await trim_stream(trimmer, key, maxlen=5)
            trims += 1

    try:
        results = await asyncio.wait_for(
            asyncio.gather(produce(), consume(), trim()), timeout=WAIT_S
        )
    finally:
        await trimmer.aclose()
    assert results[1] == list(range(total))  # every entry read, once, in order: none trimmed
    assert trims > 10
    assert removed > 0


# --- 3. the publisher declares the writers' group before the first entry -------------------


async def test_the_publisher_declares_the_group_so_trimming_keeps_unread_entries(
    client: redis.asyncio.Redis,
) -> None:
    settings = PublisherSettings.from_config(
        IngestConfig(publish_batch=20, publish_interval_ms=2),
        StreamsConfig(maxlen=50, trim_interval_s=0.001),
        ("writers",),
    )
    publisher = Publisher(client, settings, IngestMetrics())
    task = asyncio.create_task(publisher.run())
    for i in range(1000):
        publisher.add(trade(i))
        if i % 50 == 0:
            await asyncio.sleep(0.005)  # several flushes, with trims between them
    await publisher.close()
    await asyncio.wait_for(task, WAIT_S)
    key = "md:{binance}:trades"
    [group] = await client.xinfo_groups(key)
    assert group["name"] == b"writers"
    assert group["last-delivered-id"] == b"0-0"  # declared at id 0: it will read everything
    assert await client.xlen(key) == 1000  # no one read anything, so nothing was trimmed
    reply = await client.xreadgroup("writers", "late", {key: ">"})
    [(_, entries)] = cast(list[tuple[bytes, list[Entry]]], reply)
    assert [orjson.loads(f[b"d"])["trade_id"] for _, f in entries] == [str(i) for i in range(1000)]


# --- 2. no background task dies silently ---------------------------------------------------


async def test_a_trim_that_raises_is_logged_and_counted_and_publishing_goes_on(
    client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> int:
        raise AttributeError("'NoneType' object has no attribute 'decode'")

    monkeypatch.setattr("marketstream.ingest.publisher.trim_stream", broken)
    settings = PublisherSettings.from_config(
        IngestConfig(publish_batch=10, publish_interval_ms=2),
        StreamsConfig(maxlen=5, trim_interval_s=0.001),
    )
    publisher = Publisher(client, settings, IngestMetrics())
    task = asyncio.create_task(publisher.run())
    for i in range(50):
        publisher.add(trade(i))
        await asyncio.sleep(0.003)  # flushes and trims interleave
    await publisher.close()
    await asyncio.wait_for(task, WAIT_S)
    assert await client.xlen("md:{binance}:trades") == 50
    errors = publisher.metrics.registry.get_sample_value("marketstream_ingest_trim_errors_total")
    assert errors is not None
    assert errors > 0
    assert "trimming md:{binance}:trades failed" in caplog.text


def _unreachable_binance(config: PipelineConfig) -> PipelineConfig:
    """Binance only, pointed at a closed port: the connection keeps reconnecting."""
    data = config.model_dump(mode="json")
    data["exchanges"] = {
        "binance": {
            **data["exchanges"]["binance"],
            "url": f"ws://{process.LOOPBACK}:{process.free_port()}/stream",
            "rest_url": None,
            "channels": ["trades"],
        }
    }
    data["ingest"] = {**data["ingest"], "metrics_port": 0, "backoff_max_s": 0.2}
    return PipelineConfig.model_validate(data)


async def test_a_failing_publisher_task_stops_ingest_with_the_cause_and_healthz_says_so(
    client: redis.asyncio.Redis,
    redis_url: str,
    pipeline_config: PipelineConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _unreachable_binance(pipeline_config)
    service = IngestService(config, redis_url, plans=plan_connections(config))

    async def broken(batch: object) -> None:
        raise RuntimeError("boom in the publisher")

    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await until(_true_when(lambda: service.metrics_port is not None), "ingest serves")
        # the configured instruments are published at start; the publisher breaks after them
        await until(_true_when(lambda: service.publisher.published > 0), "instruments out")
        service.publisher._write = broken  # type: ignore[method-assign]
        assert service.health()[1]["failure"] is None
        service.publisher.add(trade(1))
        with pytest.raises(ServiceError, match="boom in the publisher"):
            await asyncio.wait_for(asyncio.shield(task), WAIT_S)
    finally:
        stop.set()
        with contextlib.suppress(ServiceError):
            await asyncio.wait_for(task, WAIT_S)
    ok, detail = service.health()
    assert not ok
    assert "the publisher task failed" in detail["failure"]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert any("boom in the publisher" in str(r.exc_info[1]) for r in failures if r.exc_info)


def _true_when(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def predicate() -> bool:
        return check()

    return predicate


# --- 6 and 7: a real WebSocket feed ---------------------------------------------------------


def agg_trade(i: int) -> str:
    ms = T0 // 1_000_000 + i
    data = {
        "e": "aggTrade", "E": ms, "s": "BTCUSDT", "a": i, "p": "100.5", "q": "0.25",
        "f": i, "l": i, "T": ms, "m": bool(i % 2), "M": True,
    }  # fmt: skip
    return orjson.dumps({"stream": "btcusdt@aggTrade", "data": data}).decode()


Script = Callable[[ServerConnection, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def feed(script: Script) -> AsyncIterator[str]:
    """A WebSocket server on loopback; `script(ws, n)` plays the n-th connection (from 1)."""
    count = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal count
        count += 1
        await script(ws, count)

    async with serve(handler, process.LOOPBACK, 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://{process.LOOPBACK}:{port}/stream"


def connection(
    url: str,
    client: redis.asyncio.Redis,
    *,
    processor: FrameProcessor | None = None,
    settings: RunnerSettings | None = None,
) -> Connection:
    exchange = get_venue("binance")
    subscription = Subscription(("BTC-USDT",), ("trades",))
    metrics = IngestMetrics()
    return Connection(
        exchange,
        url,
        subscription,
        processor=processor or make_processor(exchange, subscription.symbols, IngestConfig()),
        publisher=Publisher(
            client,
            PublisherSettings.from_config(IngestConfig(publish_interval_ms=2), StreamsConfig()),
            metrics,
        ),
        metrics=metrics,
        settings=settings or RunnerSettings.from_config(IngestConfig()),
    )


async def test_a_mapper_that_raises_costs_one_frame_to_the_dlq_and_the_feed_goes_on(
    client: redis.asyncio.Redis,
) -> None:
    crafted = '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","bug":true}}'

    async def script(ws: ServerConnection, n: int) -> None:
        for frame in (agg_trade(1), crafted, agg_trade(2)):
            await ws.send(frame)
        await ws.wait_closed()

    exchange = get_venue("binance")
    real = exchange.make_mapper(["BTC-USDT"])

    def buggy(frame: str | bytes, recv_ts: int) -> Any:
        if b"bug" in (frame.encode() if isinstance(frame, str) else frame):
            raise KeyError("p")  # a mapper bug, not a FrameError
        return real(frame, recv_ts)

    stop = asyncio.Event()
    async with feed(script) as url:
        template = connection(url, client)
        processor = FrameProcessor(
            buggy, template.processor.books, max_future_skew_ns=5 * 10**9, known_symbols=None
        )
        conn = connection(url, client, processor=processor)
        flusher = asyncio.create_task(conn.publisher.run())
        runner = asyncio.create_task(conn.run(stop))
        try:
            await until(_true_when(lambda: conn.session_frames == 3), "three frames read")
            await conn.publisher.wait_flushed()
            assert not runner.done()  # the connection is still up
            assert conn.connections == 1
        finally:
            stop.set()
            await asyncio.wait_for(runner, WAIT_S)
            await conn.publisher.close()
            await asyncio.wait_for(flusher, WAIT_S)
    trades = [orjson.loads(f[b"d"]) for _, f in await read_range(client, "md:{binance}:trades")]
    assert [t["trade_id"] for t in trades] == ["1", "2"]
    [(_, letter)] = await read_range(client, DLQ_STREAM)
    assert letter[b"frame"] == crafted.encode()
    assert letter[b"exchange"] == b"binance"
    assert b"KeyError" in letter[b"reason"]
    registry = conn.metrics.registry
    labels = {"exchange": "binance"}
    assert registry.get_sample_value("marketstream_ingest_mapper_errors_total", labels) == 1
    assert registry.get_sample_value("marketstream_ingest_dlq_total", labels) == 1


async def test_backoff_starts_over_after_a_session_with_frames_that_closed_abnormally(
    client: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Three sessions end at once without a frame (the wait grows); the fourth delivers a
    frame and then its TCP connection is cut (close code 1006): the next wait is back to
    the initial delay."""

    async def script(ws: ServerConnection, n: int) -> None:
        if n == 4:
            await ws.send(agg_trade(n))
            await asyncio.sleep(0.05)
        if n <= 4:
            ws.transport.abort()  # abnormal closure: no close frame
            return
        await ws.wait_closed()

    settings = RunnerSettings.from_config(IngestConfig(backoff_initial_s=0.05, backoff_max_s=30.0))
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="marketstream.ingest.runner")
    async with feed(script) as url:
        conn = connection(url, client, settings=settings)
        runner = asyncio.create_task(conn.run(stop))
        try:
            await until(_true_when(lambda: conn.connections >= 5), "the fifth connection")
        finally:
            stop.set()
            await asyncio.wait_for(runner, WAIT_S)
    delays = [
        float(r.getMessage().rsplit(" ", 1)[1].rstrip("s"))
        for r in caplog.records
        if "reconnecting in" in r.getMessage()
    ]
    assert len(delays) >= 4
    assert delays[2] > settings.backoff_initial_s  # grown after three empty sessions
    assert delays[3] <= settings.backoff_initial_s  # reset by the session with a frame
