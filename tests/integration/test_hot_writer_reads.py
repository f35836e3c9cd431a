"""How the hot writer fills a batch from a backlog: few XREADGROUP round trips."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio

from marketstream.config import PipelineConfig
from marketstream.writers import hot_writer
from marketstream.writers.hot_writer import HotWriter
from marketstream.writers.hot_writer_redis import StreamEntry, read_group
from tests.integration.endpoints import QuestDBEndpoints
from tests.integration.test_hot_writer import (
    assert_exactly_once,
    candles,
    drained,
    hot_config,
    publish,
    quotes,
    running,
    trades,
)

pytestmark = pytest.mark.integration


async def test_a_backlog_on_one_of_several_streams_fills_a_batch_in_two_reads(
    client: redis.asyncio.Redis,
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """COUNT is per stream, so a read asks each of the 3 streams for a third of the batch;
    the busy one gives all it is asked and is read again at once for the rest. Reading all
    streams again with a third of what is left each time took 15 reads for this batch."""
    exchange = "hw-reads"
    published = [*trades(exchange, 3_000), *quotes(exchange, 10), *candles(exchange, 10)]
    await publish(client, published)
    reads: list[int] = []  # entries each read returned, reads that found some

    original = read_group

    async def counted(*args: Any, **kwargs: Any) -> dict[str, list[StreamEntry]]:
        got = await original(*args, **kwargs)
        if got and any(got.values()):
            reads.append(sum(len(entries) for entries in got.values()))
        return got

    monkeypatch.setattr(hot_writer, "read_group", counted)
    config = hot_config(pipeline_config, batch_size=3_000, batch_wait_ms=200)
    writer = HotWriter(config, redis_url, questdb.http_url)
    async with running(writer) as task:
        await drained(writer, task)
    assert reads[:2] == [1_000 + 10 + 10, 2_000 - 20]  # the first batch: exactly full
    assert sum(reads) == len(published)
    assert len(reads) == 3  # and the 20 trades left, in the next
    assert_exactly_once(questdb.http, published, (exchange,))
