"""Ingest and the hot writer on one event loop, in one process (`bench/hot.py` measures it).

`marketstream run` and `demo` run them as supervised processes instead (`run.processes`).

Ingest publishes the configured exchanges into Redis Streams; the hot writer drains them into
QuestDB. Both stop on the same event: connections close first, ingest flushes what it
accepted, and the writer finishes (or leaves pending) the batch in hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from marketstream.config import PipelineConfig
from marketstream.ingest.service import IngestService, PlannedConnection
from marketstream.tiers.questdb_tables import create_all_sql, create_views_sql
from marketstream.wiring import PipelineEndpoints
from marketstream.writers.hot_writer import HotWriter


class Pipeline:
    """The hot path in one process: exchanges -> Redis Streams -> QuestDB."""

    def _create_schema(self) -> None:
        """The hot tables and the 1m OHLCV view that `query candles` reads (idempotent)."""
        for sql in [*create_all_sql(), *create_views_sql()]:
            self.writer.questdb.exec(sql)

    def __init__(
        self,
        config: PipelineConfig,
        endpoints: PipelineEndpoints,
        *,
        plans: Sequence[PlannedConnection] | None = None,
        instrument_cache: Path | None = None,
    ) -> None:
        self.ingest = IngestService(
            config,
            endpoints.redis,
            plans=list(plans) if plans is not None else None,
            instrument_cache=instrument_cache,
        )
        self.writer = HotWriter(config, endpoints.redis, endpoints.questdb_http)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        ingest_metrics_port: int | None = None,
        writer_metrics_port: int | None = None,
    ) -> None:
        """Run both until `stop`; an error in either stops the other."""
        await asyncio.to_thread(self._create_schema)
        ingest_stop, writer_stop = asyncio.Event(), asyncio.Event()
        ingest = asyncio.create_task(self.ingest.run(ingest_stop, ingest_metrics_port))
        writer = asyncio.create_task(self.writer.run(writer_stop, writer_metrics_port))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({ingest, writer, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ingest_stop.set()  # ingest first, so that what it flushes can still be written
            await asyncio.gather(ingest, return_exceptions=True)
            writer_stop.set()
            stopping.cancel()
            results = await asyncio.gather(writer, ingest, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
