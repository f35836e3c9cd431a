"""Ingest and the hot writer on a real 3-master Redis Cluster (redis-server on loopback ports),
and the migration from version-1 stream names, on the cluster and on a single server.

Streams are hash-tagged per exchange (`md:{binance}:trades`): the exchanges used here land on
three different nodes, the writer reads each with its own XREADGROUP, and everything reaches
the real QuestDB exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator, Sequence

import orjson
import pytest
import redis.asyncio

from marketstream.config import IngestConfig, PipelineConfig, StreamsConfig
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.processor import processor_for
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import SPECS, spec_of
from marketstream.schemas.records import Record, Trade
from marketstream.services.redis_cluster import RedisCluster
from marketstream.tiers.redis_bus import (
    HOT_WRITER_GROUP,
    AsyncRedis,
    legacy_stream_key,
    stream_key,
    trim_stream,
)
from marketstream.tiers.redis_packing import _HiredisPacking
from marketstream.venues.registry import get_venue
from marketstream.writers.hot_writer import HotWriter
from marketstream.writers.hot_writer_redis import raw_stream_reads, read_group
from tests.integration.endpoints import QuestDBEndpoints
from tests.integration.test_hot_writer import (
    MS,
    T0,
    assert_exactly_once,
    books,
    drained,
    hot_config,
    quotes,
    running,
    sample,
    trades,
    until,
)

pytestmark = pytest.mark.integration

SETTINGS = dataclasses.replace(
    PublisherSettings.from_config(
        IngestConfig(publish_batch=200, publish_interval_ms=2),
        StreamsConfig(legacy_price_keys=True),
    ),
    retry_initial_s=0.05,
    retry_max_s=0.2,
)


@pytest.fixture(scope="module", autouse=True)
def drop_tables_afterwards(questdb: QuestDBEndpoints) -> Iterator[None]:
    """Other modules count whole tables: drop what the writers created here."""
    yield
    for spec in SPECS:
        questdb.http.exec(f"DROP TABLE IF EXISTS {spec.table}")


def agg_trades(n: int) -> list[str]:
    """Binance spot aggTrade frames, an hour old (inside the hot horizon)."""
    frames = []
    for i in range(n):
        ms = T0 // MS + i
        data = {
            "e": "aggTrade", "E": ms, "s": "BTCUSDT", "a": i, "p": f"{100 + i % 7}.5",
            "q": "0.25", "f": i, "l": i, "T": ms, "m": bool(i % 2), "M": True,
        }  # fmt: skip
        frames.append(orjson.dumps({"stream": "btcusdt@aggTrade", "data": data}).decode())
    return frames


async def publish_all(client: AsyncRedis, records: Sequence[Record]) -> None:
    """Through the publisher, as ingest does: groups declared, streams and price keys set."""
    publisher = Publisher(client, SETTINGS, IngestMetrics())
    task = asyncio.create_task(publisher.run())
    for record in records:
        publisher.add(record)
    await publisher.close()
    await asyncio.wait_for(task, timeout=120)


async def assert_acknowledged(client: AsyncRedis, keys: Sequence[str]) -> None:
    for key in keys:
        [group] = [g for g in await client.xinfo_groups(key) if g["name"] == b"hot-writer"]
        length = await client.xlen(key)
        assert (key, group["pending"], group["lag"], group["entries-read"]) == (key, 0, 0, length)


def keys_of(records: Sequence[Record]) -> list[str]:
    return sorted({stream_key(spec_of(r).table, r.exchange) for r in records})


async def test_ingest_to_questdb_across_three_nodes(
    cluster_client: redis.asyncio.RedisCluster,
    redis_cluster: RedisCluster,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    venue = get_venue("binance")
    processor = processor_for(
        venue, venue.make_mapper(["BTC-USDT"]), IngestConfig(), known_symbols=None
    )
    recv_ts = time.time_ns()
    binance: list[Record] = []
    for frame in agg_trades(1500):
        processed = processor.process(frame, recv_ts)
        assert not processed.rejected
        binance += processed.records
    other = [*trades("cl-c", 1200), *quotes("cl-c", 300), *trades("cl-d", 800), *books("cl-d", 90)]
    published = binance + other
    await publish_all(cluster_client, published)

    keys = keys_of(published)
    nodes = {cluster_client.get_node_from_key(stream_key("trades", ex))
             for ex in ("binance", "cl-c", "cl-d")}  # fmt: skip
    assert len(nodes) == 3  # one exchange per master: the test spans the cluster
    for key in keys:
        assert await cluster_client.xlen(key) == sum(
            1 for r in published if stream_key(spec_of(r).table, r.exchange) == key
        )
    latest = orjson.loads(await cluster_client.get("price:{binance}:BTC-USDT") or b"null")
    last = binance[-1]
    assert isinstance(last, Trade)
    assert latest["price"] == last.price
    legacy = await cluster_client.get("price:binance:BTC-USDT")  # the transition's copy
    assert legacy is not None
    assert orjson.loads(legacy) == latest

    writer = HotWriter(hot_config(pipeline_config), redis_cluster.url, questdb.http_url)
    async with running(writer) as task:
        await drained(writer, task)
    assert writer.streams == set(keys)
    assert_exactly_once(questdb.http, published, ("binance", "cl-c", "cl-d"))
    await assert_acknowledged(cluster_client, keys)
    assert await cluster_client.xlen("md:dlq") == 0
    # every master was reached over connections that pack commands through hiredis
    assert all(issubclass(n.connection_class, _HiredisPacking) for n in cluster_client.get_nodes())


async def test_claims_and_trimming_on_the_cluster(
    cluster_client: redis.asyncio.RedisCluster,
    redis_cluster: RedisCluster,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    published = [*trades("cl-a", 900), *trades("cl-e", 700)]
    await publish_all(cluster_client, published)
    keys = keys_of(published)
    # A writer that read 300 entries of each stream and died: they stay pending to it.
    reader = raw_stream_reads(cluster_client)
    got = await read_group(
        reader, HOT_WRITER_GROUP, "dead", dict.fromkeys(keys, ">"), count=300, block_ms=None
    )
    assert sorted((k, len(v)) for k, v in got.items()) == [(k, 300) for k in keys]
    for key in keys:  # trimming keeps what the group has not acknowledged: everything here
        assert await trim_stream(cluster_client, key, 10) == 0

    config = hot_config(pipeline_config, claim_idle_ms=200)
    writer = HotWriter(config, redis_cluster.url, questdb.http_url, consumer="heir")
    async with running(writer) as task:
        await drained(writer, task)
    assert sample(writer, "marketstream_hot_recovered_entries_total", how="claimed") == 600
    assert_exactly_once(questdb.http, published, ("cl-a", "cl-e"))
    await assert_acknowledged(cluster_client, keys)
    for key in keys:  # all acknowledged now: trimmed down to maxlen
        await trim_stream(cluster_client, key, 10)
        assert await cluster_client.xlen(key) == 10


async def test_writers_serve_only_their_exchanges(
    cluster_client: redis.asyncio.RedisCluster,
    redis_cluster: RedisCluster,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    mine, theirs = [*trades("cl-f", 600)], [*trades("cl-g", 400), *quotes("cl-g", 50)]
    await publish_all(cluster_client, mine + theirs)
    config = hot_config(pipeline_config, exchanges=("cl-f",))
    first = HotWriter(config, redis_cluster.url, questdb.http_url, consumer="f-only")
    async with running(first) as task:
        await drained(first, task)
    assert first.streams == set(keys_of(mine))
    assert_exactly_once(questdb.http, mine, ("cl-f",))
    for key in keys_of(theirs):  # declared by ingest, never read by the first writer
        [group] = await cluster_client.xinfo_groups(key)
        assert (key, group["entries-read"]) == (key, None)
    second = HotWriter(
        hot_config(pipeline_config), redis_cluster.url, questdb.http_url, exchanges=["cl-g"]
    )
    async with running(second) as task:
        await drained(second, task)
    assert_exactly_once(questdb.http, theirs, ("cl-g",))
    await assert_acknowledged(cluster_client, keys_of(mine + theirs))


async def _migration(client: AsyncRedis, url: str, questdb: QuestDBEndpoints,
                     pipeline_config: PipelineConfig, exchange: str) -> None:  # fmt: skip
    """Version-1 streams (`md:trades:<exchange>`) left by an older ingest, with entries and
    no group yet, beside the new ones: the new writer drains both, each entry once."""
    old = [*trades(exchange, 700), *quotes(exchange, 200)]
    new = trades(exchange, 500, start=700)
    pipe = client.pipeline(transaction=False)
    for record in old:
        pipe.xadd(legacy_stream_key(spec_of(record).table, record.exchange),
                  {"d": encode_record(record)})  # fmt: skip
    await pipe.execute()
    await publish_all(client, new)
    writer = HotWriter(hot_config(pipeline_config), url, questdb.http_url)
    async with running(writer) as task:
        await until(lambda: bool(writer.streams), "the writer found the streams")
        await drained(writer, task)
    old_keys = [legacy_stream_key("trades", exchange), legacy_stream_key("quotes", exchange)]
    assert writer.streams == {*old_keys, stream_key("trades", exchange)}
    assert_exactly_once(questdb.http, old + new, (exchange,))
    await assert_acknowledged(client, [*old_keys, stream_key("trades", exchange)])


async def test_old_stream_names_are_drained_on_the_cluster(
    cluster_client: redis.asyncio.RedisCluster,
    redis_cluster: RedisCluster,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    await _migration(cluster_client, redis_cluster.url, questdb, pipeline_config, "cl-old")


async def test_old_stream_names_are_drained_on_one_server(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    await _migration(client, redis_url, questdb, pipeline_config, "one-old")
