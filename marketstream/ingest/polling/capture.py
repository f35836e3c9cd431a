"""`marketstream record --source NAME`: a polled source's answers into a recording, polled
as ingest polls it (the same ticks, batches, limits, retries and hedges).

Every answer is kept, errors included, with its status and its headers minus anything that
may carry a credential (`without_secrets`): the replay server then serves the capture, and
its 429s teach the poller's tests what the live API really sent. The key itself travels in a
request header and never reaches the file.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from pathlib import Path

from marketstream.http_client import HttpAnswer, get_answer, open_async_client
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.polling.plan import PlannedSource
from marketstream.ingest.polling.poller import SourcePoller
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter, without_secrets
from marketstream.schemas.records import Price

FLUSH_AFTER_S = 1.0


@dataclass(slots=True)
class CaptureStats:
    answers: int = 0  # every answer, whatever its status
    errors: int = 0  # answers with a status other than 200
    prices: int = 0  # prices the answers held (validated as ingest does)
    dead: int = 0  # answers or prices ingest would have sent to md:dlq
    missed: int = 0  # token ticks without a price in time


class _Counter:
    """The poller's sink: counts what ingest would have published."""

    def __init__(self, stats: CaptureStats) -> None:
        self.stats = stats

    def add(self, record: Price) -> None:
        self.stats.prices += 1

    def add_dead_letter(
        self,
        *,
        exchange: str,
        reason: str,
        frame: str | bytes,
        recv_ts: int,
        record: Price | None = None,
    ) -> None:
        self.stats.dead += 1


async def capture(
    planned: PlannedSource,
    out: Path,
    *,
    duration_s: float | None,
    stop: asyncio.Event,
    max_future_skew_ns: int,
) -> CaptureStats:
    """Poll until `duration_s`, `planned.config.max_ticks` ticks or `stop`; every answer
    appended to `out`."""
    stats = CaptureStats()
    base = planned.base_url.rstrip("/")
    name = planned.source.name
    with RecordingWriter(out, flush_interval_s=FLUSH_AFTER_S) as writer:

        def keep(target: str, answer: HttpAnswer, recv_ns: int) -> None:
            stats.answers += 1
            stats.errors += answer.status != 200
            frame = RecordedFrame(
                recv_ns,
                name,
                base + target,
                answer.body.decode("utf-8", "replace"),
                status=answer.status,
                headers=without_secrets(answer.headers),
            )
            writer.write(frame)
            writer.flush_if_due()

        client = open_async_client(planned.base_url, planned.headers, planned.config.timeout_s)
        poller = SourcePoller(
            planned.source,
            planned.config,
            functools.partial(get_answer, client),
            publisher=_Counter(stats),
            metrics=IngestMetrics(),
            max_future_skew_ns=max_future_skew_ns,
            on_answer=keep,
        )
        halt = asyncio.Event()
        polling = asyncio.create_task(poller.run(halt))
        stopping = asyncio.create_task(stop.wait())
        done = asyncio.create_task(_until_done(poller))
        try:
            await asyncio.wait(
                {polling, stopping, done}, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            halt.set()
            stopping.cancel()
            done.cancel()
            try:
                await polling
            finally:
                await client.aclose()
                stats.missed = poller.ticks_missed
    return stats


async def _until_done(poller: SourcePoller) -> None:
    while not poller.done:
        await asyncio.sleep(0.05)
