"""The publisher and the stream trimmer against a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import orjson
import pytest
import redis.asyncio

from marketstream.config import IngestConfig, StreamsConfig
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.schemas.codec import decode_entry
from marketstream.schemas.records import Book, Quote, Record, Trade
from marketstream.services import process
from marketstream.services.redis_server import RedisServer, start_redis
from marketstream.tiers.redis_bus import (
    DLQ_STREAM,
    Entry,
    connect_async,
    oldest_unacknowledged,
    parse_id,
    read_range,
    trim_stream,
)

pytestmark = pytest.mark.integration

T0 = 1_732_180_000_000_000_000
SETTINGS = dataclasses.replace(
    PublisherSettings.from_config(
        IngestConfig(publish_batch=50, publish_interval_ms=2), StreamsConfig()
    ),
    retry_initial_s=0.05,
    retry_max_s=0.2,
)


def trades(n: int, exchange: str = "binance", start: int = 0) -> list[Record]:
    return [
        Trade(exchange, "BTC-USDT", T0 + i, T0 + i + 1, str(i), 100.0 + i, 1.0, "buy")
        for i in range(start, start + n)
    ]


async def stream_records(client: redis.asyncio.Redis, key: str) -> list[Record]:
    return [decode_entry(fields) for _, fields in await read_range(client, key)]


async def ids(client: redis.asyncio.Redis, key: str) -> list[bytes]:
    return [entry_id for entry_id, _ in await read_range(client, key)]


async def get_json(client: redis.asyncio.Redis, key: str) -> object:
    value = await client.get(key)
    assert value is not None, f"{key} is not set"
    return orjson.loads(value)


async def test_records_reach_their_streams_in_order(client: redis.asyncio.Redis) -> None:
    publisher = Publisher(client, SETTINGS, IngestMetrics())
    sent = trades(120) + trades(3, exchange="coinbase")
    quote = Quote("binance", "ETH-USDT", T0, T0 + 5, 3000.0, 1.0, 3000.5, 2.0)
    sent.append(quote)
    for record in sent:
        publisher.add(record)
    task = asyncio.create_task(publisher.run())
    await publisher.close()
    await asyncio.wait_for(task, timeout=30)
    assert await stream_records(client, "md:{binance}:trades") == sent[:120]
    assert await stream_records(client, "md:{coinbase}:trades") == sent[120:123]
    assert await stream_records(client, "md:{binance}:quotes") == [quote]
    assert publisher.published == len(sent)


async def test_one_flush_larger_than_a_batch_keeps_each_stream_in_order(
    client: redis.asyncio.Redis,
) -> None:
    """A flush holding several batches' worth of two interleaved streams (as after Redis was
    away) writes every entry once, in order, each as `XADD key * d <record>` would."""
    publisher = Publisher(client, SETTINGS, IngestMetrics())
    binance, coinbase = trades(3 * SETTINGS.batch + 7), trades(SETTINGS.batch + 1, "coinbase")
    for i, record in enumerate(binance):
        publisher.add(record)
        if i < len(coinbase):
            publisher.add(coinbase[i])
    assert await publisher.flush() == len(binance) + len(coinbase)
    assert await stream_records(client, "md:{binance}:trades") == binance
    assert await stream_records(client, "md:{coinbase}:trades") == coinbase
    entries = await read_range(client, "md:{coinbase}:trades")
    assert all(list(fields) == [b"d"] for _, fields in entries)
    assert publisher.published == len(binance) + len(coinbase)


async def test_latest_price_merges_trades_and_quotes(client: redis.asyncio.Redis) -> None:
    publisher = Publisher(client, SETTINGS, IngestMetrics())
    publisher.add(Quote("binance", "BTC-USDT", T0, T0, 99.0, 1.0, 101.0, 1.0))
    await publisher.flush()
    before_trade = await get_json(client, "price:{binance}:BTC-USDT")
    assert before_trade == {"price": 100.0, "ts": T0, "bid": 99.0, "ask": 101.0}  # the mid
    publisher.add(Trade("binance", "BTC-USDT", T0 + 5, T0 + 6, "9", 100.5, 1.0, "sell"))
    publisher.add(Quote("binance", "BTC-USDT", T0 + 7, T0 + 8, 100.0, 1.0, 100.75, 1.0))
    await publisher.flush()
    latest = await get_json(client, "price:{binance}:BTC-USDT")
    assert latest == {"price": 100.5, "ts": T0 + 7, "bid": 100.0, "ask": 100.75}


async def test_dead_letters_keep_frame_reason_and_record(client: redis.asyncio.Redis) -> None:
    publisher = Publisher(client, SETTINGS, IngestMetrics())
    bad = Book("binance", "BTC-USDT", T0, T0, 1, [(2.0, 1.0)], [(1.0, 1.0)])
    publisher.add_dead_letter(exchange="binance", reason="not JSON", frame="{oops", recv_ts=T0)
    publisher.add_dead_letter(
        exchange="binance", reason="book is crossed", frame=b'{"e":1}', recv_ts=T0, record=bad
    )
    await publisher.flush()
    entries = [fields for _, fields in await read_range(client, DLQ_STREAM)]
    assert entries[0] == {
        b"exchange": b"binance",
        b"reason": b"not JSON",
        b"recv_ts": str(T0).encode(),
        b"frame": b"{oops",
    }
    assert entries[1][b"reason"] == b"book is crossed"
    assert orjson.loads(entries[1][b"record"])["type"] == "book"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, to stop and restart under the publisher."""
    server = _start(tmp_path, process.free_port())
    yield server
    process.stop(server.process.pid, server.process.marker)


def _start(tmp_path: Path, port: int) -> RedisServer:
    return start_redis(
        tmp_path / "redis",
        port=port,
        log_path=tmp_path / "redis.log",
        pid_path=tmp_path / "redis.pid",
        timeout_s=30,
    )


async def test_nothing_accepted_is_lost_while_redis_is_down(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    client = connect_async(own_redis.url, timeout_s=1)
    publisher = Publisher(client, SETTINGS, IngestMetrics())
    task = asyncio.create_task(publisher.run())
    for record in trades(100):
        publisher.add(record)
    await asyncio.wait_for(publisher.wait_flushed(), timeout=30)

    process.stop(own_redis.process.pid, own_redis.process.marker)
    for record in trades(100, start=100):
        publisher.add(record)  # accepted while Redis is away
    await asyncio.sleep(0.5)  # several failed flush attempts
    errors = publisher.metrics.registry.get_sample_value("marketstream_ingest_publish_errors_total")
    assert errors is not None
    assert errors > 0
    restarted = _start(tmp_path, int(own_redis.url.rsplit(":", 1)[1].split("/")[0]))
    try:
        await publisher.close()
        await asyncio.wait_for(task, timeout=60)
        got = await stream_records(client, "md:{binance}:trades")
        assert [r.trade_id for r in got] == [str(i) for i in range(200)]  # type: ignore[union-attr]
    finally:
        await client.aclose()
        process.stop(restarted.process.pid, restarted.process.marker)


class _StalledPipeline:
    """A pipeline whose round trip hangs until `released`, then fails as a lost Redis does."""

    def __init__(self, released: asyncio.Event) -> None:
        self.released = released

    def execute_command(self, *args: object) -> None:
        pass

    async def execute(self) -> None:
        await self.released.wait()
        raise redis.ConnectionError("connection lost")


class _StalledClient:
    def __init__(self) -> None:
        self.released = asyncio.Event()

    def pipeline(self, transaction: bool) -> _StalledPipeline:
        return _StalledPipeline(self.released)


async def test_a_failed_flush_goes_back_before_what_came_during_it(
    client: redis.asyncio.Redis,
) -> None:
    """Records added while a flush is in flight, which then fails, follow that flush's records
    in their stream: the failed batch is put back in front of them, every stream in order."""
    stalled = _StalledClient()
    settings = dataclasses.replace(SETTINGS, groups=())
    publisher = Publisher(cast(redis.asyncio.Redis, stalled), settings, IngestMetrics())
    quotes = [
        Quote("binance", "BTC-USDT", T0 + i, T0 + i + 1, 100.0, 1.0, 101.0, 1.0) for i in range(4)
    ]
    for record in [*trades(30), quotes[0], quotes[1]]:
        publisher.add(record)
    flush = asyncio.create_task(publisher.flush())
    await asyncio.sleep(0)  # the flush is in flight, its batch taken
    assert publisher.unflushed == 32
    for record in [*trades(20, start=30), quotes[2], quotes[3]]:
        publisher.add(record)
    stalled.released.set()
    with pytest.raises(redis.ConnectionError):
        await flush
    assert publisher.buffered == 54
    publisher.client = client
    assert await publisher.flush() == 54
    got = await stream_records(client, "md:{binance}:trades")
    assert [r.trade_id for r in got] == [str(i) for i in range(50)]  # type: ignore[union-attr]
    assert await stream_records(client, "md:{binance}:quotes") == quotes
    assert publisher.published == 54


async def test_trim_never_drops_what_a_group_still_needs(client: redis.asyncio.Redis) -> None:
    key = "md:{trimtest}:trades"
    for i in range(100):
        await client.xadd(key, {"d": str(i)})
    added = await ids(client, key)
    await client.xgroup_create(key, "hot-writer", id="0")
    reply = await client.xreadgroup("hot-writer", "w1", {key: ">"}, count=30)
    read_ids = [entry_id for entry_id, _ in cast(list[tuple[bytes, list[Entry]]], reply)[0][1]]
    await client.xack(key, "hot-writer", *read_ids[:20])  # 20 acked, 10 pending, 70 unread

    assert await trim_stream(client, key, maxlen=10) == 20  # only the acknowledged ones
    assert await ids(client, key) == added[20:]
    assert await oldest_unacknowledged(client, key) == parse_id(added[20])

    await client.xack(key, "hot-writer", *read_ids[20:])
    await client.xreadgroup("hot-writer", "w1", {key: ">"})
    await client.xack(key, "hot-writer", *added[30:])
    assert await trim_stream(client, key, maxlen=10) == 70
    assert await client.xlen(key) == 10


async def test_trim_without_groups_keeps_the_newest(client: redis.asyncio.Redis) -> None:
    key = "md:{trimtest}:quotes"
    for i in range(50):
        await client.xadd(key, {"d": str(i)})
    added = await ids(client, key)
    assert await trim_stream(client, key, maxlen=20) == 30
    assert await ids(client, key) == added[30:]
    assert await trim_stream(client, key, maxlen=20) == 0
