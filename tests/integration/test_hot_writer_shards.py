"""Writers with `--shard I/N` split the streams, never one stream: a candle re-sent while its
bar forms keeps its last update even with two writers draining at the same time."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from marketstream.config import PipelineConfig
from marketstream.schemas.columns import spec_of
from marketstream.schemas.records import Candle, Record
from marketstream.tiers.redis_bus import stream_key
from marketstream.writers.hot_writer import HotWriter
from tests.integration.endpoints import QuestDBEndpoints
from tests.integration.test_hot_writer import (
    T0,
    assert_exactly_once,
    assert_fully_acknowledged,
    drained,
    hot_config,
    publish,
    quotes,
    running,
    trades,
)

pytestmark = pytest.mark.integration

UPDATES = 3000  # re-sends of each forming bar, published before the writers start


def forming_bars(exchange: str, bars: int) -> list[Record]:
    """`UPDATES` updates of each bar in stream order, close and volume rising: the last
    update of a bar is the only right row for it."""
    minute = 60_000_000_000
    return [
        Candle(exchange, "BTC-USDT", "1m", T0 + bar * minute, 100.0, 100.0 + u, 99.0,
               100.0 + u, float(u), u, u == UPDATES - 1)
        for u in range(UPDATES)
        for bar in range(bars)
    ]  # fmt: skip


async def test_two_sharded_writers_split_the_streams_and_keep_each_in_order(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
) -> None:
    exchanges = ("sh-a", "sh-b", "sh-c")
    candles = [r for ex in exchanges for r in forming_bars(ex, 2)]
    others = [r for ex in exchanges for r in (*trades(ex, 400), *quotes(ex, 100))]
    await publish(client, candles + others)
    keys = {stream_key(spec_of(r).table, r.exchange) for r in candles + others}
    config = hot_config(pipeline_config, batch_size=50)  # many small batches per writer
    first = HotWriter(config, redis_url, questdb.http_url, consumer="sh-1", shard="1/2")
    second = HotWriter(config, redis_url, questdb.http_url, consumer="sh-2", shard="2/2")
    async with running(first) as one, running(second) as two:
        await asyncio.gather(drained(first, one), drained(second, two))
    assert first.streams
    assert second.streams
    assert not first.streams & second.streams
    assert first.streams | second.streams == keys
    await assert_fully_acknowledged(client, sorted(keys))
    assert_exactly_once(questdb.http, others, exchanges)
    listed = ", ".join(f"'{e}'" for e in exchanges)  # our own names, not input
    rows = questdb.http.exec(
        f"SELECT exchange, ts, high, close, volume, trades, closed FROM candles "
        f"WHERE exchange IN ({listed}) ORDER BY exchange, ts"
    )["dataset"]
    last = UPDATES - 1
    expected = sorted(
        [r.exchange, r.ts, r.high, r.close, r.volume, r.trades, r.closed]
        for r in candles
        if isinstance(r, Candle) and r.trades == last
    )
    got = [[e, ts, h, c, v, n, closed] for e, ts, h, c, v, n, closed in rows]
    assert len(got) == len(expected)
    assert [row[2:] for row in got] == [row[2:] for row in expected]
