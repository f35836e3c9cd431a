"""`marketstream write-hot`: the record streams into QuestDB, nothing lost, nothing doubled.

Delivery (ARCHITECTURE.md, "Delivery and loss"): entries are read through the consumer group
`hot-writer` and acknowledged only once QuestDB confirmed the flush that holds them, or once
the dead letter that stands for them is in `md:dlq`. A crash between the write and the XACK
makes the batch be written again later, which the tables' dedup keys absorb. A writer that
stops leaves its pending entries to itself (re-read by name when it starts again) or to the
others (XAUTOCLAIM once idle for `hot.claim_idle_ms`). A batch is read while the one before
is being written. While QuestDB or Redis is unreachable the writer retries the batch being
written with backoff and reads no more than the next batch: memory stays at two batches and
the streams grow instead (trimming never drops unacknowledged entries). A writer
started while QuestDB is down waits for it the same way (its /healthz says so meanwhile).

Poison entries: an entry QuestDB fails on while it answers otherwise (see
`hot_writer_questdb`) is delivered again (XCLAIM, which Redis counts), and one delivered
more than `hot.max_deliveries` times, by failed writes or by writers that died holding it,
goes to md:dlq with the reason, its stream and id, and is acknowledged; the rest of the batch
goes on. An unexpected error (a bug) stops the writer with the cause logged, and the process
exits non-zero; whoever restarts it re-reads the batch, which counts as a delivery too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from redis.exceptions import RedisError

from marketstream.config import PipelineConfig
from marketstream.errors import ServiceError
from marketstream.event_loop import wait_until_set
from marketstream.logs import context_logger
from marketstream.metrics_server import bound_port, serve_metrics
from marketstream.retry import Backoff, retry_async
from marketstream.schemas.codec import DecodeError
from marketstream.schemas.entry_structs import EntryRecord, decode_entry_fields
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_tables import create_all_sql
from marketstream.tiers.redis_bus import connect_bus_async
from marketstream.writers.hot_writer_metrics import HotWriterMetrics
from marketstream.writers.hot_writer_questdb import (
    QuestDBUnavailableError,
    RowSink,
    WriteOutcome,
    wal_applied,
    wal_states,
)
from marketstream.writers.hot_writer_redis import (
    DeadLetter,
    StreamEntry,
    acknowledge,
    claim_idle,
    dead_letter_entry,
    delivery_counts,
    discover_streams,
    ensure_group,
    group_states,
    raw_stream_reads,
    read_group,
    redeliver,
    send_dead_letters,
    streams_drained,
)
from marketstream.writers.stream_shard import StreamShard

log = logging.getLogger(__name__)

T = TypeVar("T")

WRITE_POLL_MS: Final = 5  # shortest block of a due batch's reads while a write is in flight
IDLE_BLOCK_MS: Final = 100  # longest XREADGROUP block: how soon a stop or a deadline is seen
UNHEALTHY_AFTER_S: Final = 10.0  # writes or round trips failing this long: /healthz says 503
WAL_CHECK_TIMEOUT_S: Final = 2.0  # the WAL gauges must not wait long on a QuestDB that is down
PROBE_TIMEOUT_S: Final = 2.0  # SELECT 1: does QuestDB answer at all, after a failed write


def default_consumer() -> str:
    """host-pid: unique among live writers. A restarted writer resumes its own pending
    entries only under the same name (`--consumer`); otherwise others claim them."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(slots=True)
class DecodedBatch:
    """A batch as records to write (with their entries), dead letters, and entries deleted
    from their stream after delivery (nothing to write, only to acknowledge)."""

    entries: list[StreamEntry] = field(default_factory=list)
    records: list[EntryRecord] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    deleted: list[StreamEntry] = field(default_factory=list)


def decode_batch(entries: Iterable[StreamEntry]) -> DecodedBatch:
    batch = DecodedBatch()
    for entry in entries:
        if not entry.fields:
            batch.deleted.append(entry)
            continue
        try:
            record = decode_entry_fields(entry.fields)
        except DecodeError as exc:
            batch.dead.append(DeadLetter(entry, "undecodable", f"not a record: {exc}"))
            continue
        batch.entries.append(entry)
        batch.records.append(record)
    return batch


@dataclass(slots=True)
class _Batch:
    """The entries in hand; an entry met twice (re-read and claimed) is kept once. Each has
    its delivery count (1 for a new entry, the only ones not stored) and, after a failed
    write, why it failed."""

    entries: list[StreamEntry] = field(default_factory=list)
    deliveries: dict[tuple[str, bytes], int] = field(default_factory=dict)
    errors: dict[tuple[str, bytes], str] = field(default_factory=dict)
    started: float = 0.0  # when its first entry came (monotonic)
    grown: float = 0.0  # when entries last came
    quiet: bool = False  # a read found nothing new `batch_quiet_ms` after they did
    _seen: set[tuple[str, bytes]] | None = None  # built once an entry may come twice

    def add(
        self,
        entries: Iterable[StreamEntry],
        deliveries: dict[tuple[str, bytes], int] | None = None,
    ) -> int:
        """Entries re-read or claimed (they may be in hand already), with their counts."""
        seen = self._seen
        if seen is None:
            seen = self._seen = {(e.stream, e.id) for e in self.entries}
        added = 0
        for entry in entries:
            key = (entry.stream, entry.id)
            if key in seen:
                continue
            self._grow()
            seen.add(key)
            self.entries.append(entry)
            count = (deliveries or {}).get(key, 1)
            if count != 1:
                self.deliveries[key] = count
            added += 1
        return added

    def add_new(self, entries: list[StreamEntry]) -> None:
        """Entries XREADGROUP `>` delivered for the first time: none of them can be in hand."""
        if not entries:
            return
        self._grow()
        self.entries.extend(entries)
        if self._seen is not None:
            self._seen.update((e.stream, e.id) for e in entries)

    def extend(self, later: _Batch) -> None:
        """The entries of `later` after these, with their delivery counts and errors."""
        self.add(later.entries, later.deliveries)
        self.errors.update(later.errors)

    def _grow(self) -> None:
        self.grown = time.monotonic()
        self.quiet = False
        if not self.entries:
            self.started = self.grown

    def deadline(self, wait_s: float, quiet_s: float) -> float:
        """How long a read may wait for more: until the batch's wait is over, or until it
        has been `quiet_s` since entries last came."""
        return min(self.started + wait_s, self.grown + quiet_s)

    def due(self, now: float, wait_s: float) -> bool:
        """Its first entry waited `wait_s`, or a read found the streams quiet (a burst that
        ended gains nothing by waiting; a steady flow fills the batch). Quiet is what a read
        found, never the time alone: a writer busy building rows has entries waiting."""
        return bool(self.entries) and (self.quiet or now - self.started >= wait_s)

    def delivered(self, entry: StreamEntry) -> int:
        return self.deliveries.get((entry.stream, entry.id), 1)

    def __len__(self) -> int:
        return len(self.entries)


class _StoppingError(Exception):
    """Stop was requested while a write or a round trip kept failing: leave it pending."""


class HotWriter:
    """One consumer of the group `hot-writer`; several may run against the same streams.

    In-process use: `await writer.run(stop)` until `stop` is set; `await writer.drained()`
    tells whether every stream is written and acknowledged; `writer.metrics` holds the
    Prometheus metrics.
    """

    def __init__(
        self,
        config: PipelineConfig,
        redis_url: str,
        questdb_http_url: str,
        *,
        consumer: str | None = None,
        exchanges: Sequence[str] | None = None,
        shard: str | None = None,
    ) -> None:
        if consumer is not None and not consumer.strip():
            raise ServiceError("the hot writer's consumer name must not be empty")
        self.config = config
        self.settings = config.hot
        # QuestDB or Redis down: retry_initial_s, doubling up to retry_max_s, for every retry.
        self._backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)
        self.group = config.hot.group
        self.redis_url = redis_url
        self.consumer = consumer or default_consumer()
        self.log = context_logger(log, consumer=self.consumer)
        self.metrics = HotWriterMetrics()
        self.client = raw_stream_reads(connect_bus_async(redis_url))
        self.exchanges = tuple(exchanges if exchanges is not None else config.hot.exchanges)
        self.shard = StreamShard.parse(shard if shard is not None else config.hot.shard)
        self.questdb = QuestDBHttp(questdb_http_url)
        self.metrics_port: int | None = None
        self.streams: set[str] = set()
        self.written = 0  # entries acknowledged after QuestDB confirmed them
        self.dead_lettered = 0
        self._new_cursors: dict[str, str] = {}
        self._own_pending: dict[str, bytes] = {}  # stream -> cursor, until our PEL is re-read
        self._claim_cursors: dict[str, bytes] = {}
        self._batch = _Batch()
        self._writing: asyncio.Task[_Batch | None] | None = None  # the write in flight
        self._in_flight = 0  # its entries
        self._write_started = 0.0  # when it started (monotonic)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hot-writer-questdb")
        self._sink: RowSink | None = None
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self._wal_suspended: list[str] = []
        self._ready = False  # QuestDB answered and the tables exist
        self.failure: str | None = None  # what stopped the writer, if something did

    # --- the public surface -----------------------------------------------------------------
    async def run(self, stop: asyncio.Event, metrics_port: int | None = None) -> None:
        """Write until `stop` is set, then finish the batch in hand: written and acknowledged,
        or (QuestDB or Redis unreachable) left pending for this name or another writer.

        Raises ServiceError at start when Redis does not answer, or the metrics port is taken;
        waits (and retries) while QuestDB does not answer. Raises ServiceError, with the cause
        logged, when an unexpected error stops the writer.
        """
        try:
            await self._check_redis()
            await self._serve(stop, metrics_port)
        except (ServiceError, asyncio.CancelledError):
            raise
        except Exception as exc:
            self.failure = f"stopped by an unexpected error: {exc!r}"
            self.log.exception("hot writer %s %s", self.consumer, self.failure)
            raise ServiceError(f"hot writer {self.consumer} {self.failure}") from exc
        finally:
            self._executor.shutdown(wait=False)
            await self.client.aclose()

    async def drained(self) -> bool:
        """True when every record stream has been delivered to the group and acknowledged:
        each record is in QuestDB or in md:dlq. QuestDB applies its WAL a few ms later;
        `wait_drained(queryable=True)` waits for that too. Only this writer's exchanges
        (`hot.exchanges`) and shard (`hot.shard`) count."""
        return await streams_drained(self.client, self.group, self.exchanges, self.shard)

    async def wait_drained(self, *, queryable: bool = False, poll_s: float = 0.05) -> None:
        """Wait until `drained()` (and, if queryable, every QuestDB WAL is applied); bound the
        wait with asyncio.timeout: a writer that cannot write never drains."""
        while not await self.drained():
            await asyncio.sleep(poll_s)
        if queryable:
            while not await asyncio.to_thread(wal_applied, self.questdb):
                await asyncio.sleep(poll_s)

    def health(self) -> tuple[bool, dict[str, Any]]:
        failing_for = 0.0
        if self._failing_since is not None:
            failing_for = time.monotonic() - self._failing_since
        ok = (
            self._ready
            and self.failure is None
            and failing_for < UNHEALTHY_AFTER_S
            and not self._wal_suspended
        )
        detail = {
            "consumer": self.consumer,
            "questdb_ready": self._ready,
            "failure": self.failure,
            "streams": len(self.streams),
            "in_hand": len(self._batch) + self._in_flight,
            "written": self.written,
            "dead_lettered": self.dead_lettered,
            "failing_for_s": round(failing_for, 1),
            "last_error": self._last_error if self._failing_since is not None else None,
            "wal_suspended": self._wal_suspended,
        }
        return ok, detail

    # --- start ------------------------------------------------------------------------------
    async def _check_redis(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise ServiceError(f"Redis at {self.redis_url} unreachable: {exc}") from None

    def _create_tables(self) -> None:
        for sql in create_all_sql():
            self.questdb.exec(sql)

    async def _wait_for_questdb(self, stop: asyncio.Event) -> bool:
        """Create the tables, retrying with backoff while QuestDB does not answer; False if
        stopped first. Compose may start a writer before QuestDB: it waits, it does not exit."""
        if stop.is_set():
            return False
        try:
            await retry_async(
                lambda: self._in_thread(self._create_tables),
                self._backoff,
                retry_on=(ServiceError,),
                on_failure=lambda exc, _pause: self._failed("questdb", exc),
                sleep=functools.partial(_sleep_unless_stopped, stop),
            )
        except _StoppingError:
            return False
        self._succeeded()
        self._ready = True
        return True

    def _questdb_answers(self) -> bool:
        try:
            QuestDBHttp(self.questdb.base_url, timeout_s=PROBE_TIMEOUT_S).exec("SELECT 1")
        except ServiceError:
            return False
        return True

    async def _serve(self, stop: asyncio.Event, metrics_port: int | None) -> None:
        host = self.settings.metrics_host
        port = self.settings.metrics_port if metrics_port is None else metrics_port
        try:
            server = await serve_metrics(self.metrics.registry, self.health, host, port)
        except OSError as exc:  # e.g. a second writer on this host with the same port
            raise ServiceError(
                f"hot writer metrics cannot listen on {host}:{port} ({exc.strerror or exc}): "
                "set hot.metrics_port or pass --metrics-port (0 picks a free port)"
            ) from None
        self.metrics_port = bound_port(server)
        try:
            self.log.info(
                "hot writer %s: metrics on http://%s:%d/metrics; exchanges %s, shard %s",
                self.consumer,
                host,
                self.metrics_port,
                ",".join(self.exchanges) or "all",
                self.shard,
            )
            if not await self._wait_for_questdb(stop):
                return
            sink = self._sink = RowSink(
                self.questdb.sender_conf(),
                flush_timeout_s=self.settings.flush_timeout_s,
                flush_max_bytes=self.settings.flush_max_bytes,
                metrics=self.metrics,
                answers=self._questdb_answers,
                executor=self._executor,
            )
            # Its own stop, set before the cancel: a cancel that lands inside redis-py's
            # pipeline can be swallowed there, and the gauges would then refresh for ever.
            watch_stop = asyncio.Event()
            watcher = asyncio.create_task(self._watch(watch_stop))
            try:
                await self._consume(stop)
            finally:
                watch_stop.set()
                watcher.cancel()
                # gather, not suppress(CancelledError): a cancel of run() itself must go on.
                await asyncio.gather(watcher, return_exceptions=True)
                await self._in_thread(sink.close)
        finally:
            server.close()
            await server.wait_closed()
            self.log.info(
                "hot writer %s stopped: %d entries written, %d dead letters",
                self.consumer,
                self.written,
                self.dead_lettered,
            )

    # --- the loop ---------------------------------------------------------------------------
    async def _consume(self, stop: asyncio.Event) -> None:
        """Fill a batch (idle entries claimed, this name's own pending ones, then new ones)
        until it is full, its oldest entry waited `batch_wait_ms`, or a read found nothing new
        for `batch_quiet_ms`; write it; repeat. The write goes on while the next batch fills
        with new entries, so that reading from Redis overlaps QuestDB's time on the flush; at
        most one write is in flight, and the entries it hands back (QuestDB failed on them) go
        first into the next. Claims and re-reads of this name's own pending entries wait for
        the write in flight: they could otherwise meet its entries again. Redis errors keep
        the batch and retry with backoff."""
        try:
            if await self._fill_and_write(stop) and await self._finish_write(stop) and self._batch:
                await self._write(self._batch, stop)
        finally:
            writing, self._writing = self._writing, None
            if writing is not None and not writing.done():  # an error left it: crash semantics
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)

    async def _fill_and_write(self, stop: asyncio.Event) -> bool:
        """The loop until stopped; False when it stopped with a write's entries pending."""
        settings = self.settings
        wait_s = settings.batch_wait_ms / 1000
        claim_every_s = settings.claim_idle_ms / 2000
        next_refresh = next_claim = 0.0
        failures = 0  # Redis round trips in a row that failed
        while not stop.is_set():
            batch = self._batch
            try:
                now = time.monotonic()
                if now >= next_refresh:
                    await self._refresh()
                    next_refresh = now + settings.refresh_interval_s
                writing = self._writing
                done = writing is not None and writing.done()
                # A batch whose wait is over still takes what arrives while the write before
                # it is in flight: in the steady state, QuestDB then gets one transaction per
                # flush time, not one per batch_wait_ms.
                due = batch.due(now, wait_s)
                if len(batch) >= settings.batch_size or (due and writing is None):
                    if not await self._start_write(stop):
                        return False
                    continue
                if done or now >= next_claim or self._own_pending:
                    if not await self._finish_write(stop):
                        return False
                    batch = self._batch  # entries handed back went into it
                    if done:
                        continue  # handed back entries may make the batch ready
                room = settings.batch_size - len(batch)
                if now >= next_claim:
                    await self._claim(batch, room)
                    next_claim = now + claim_every_s
                else:
                    await self._read(batch, room, now, min(next_refresh, next_claim), stop)
                self._succeeded()
                failures = 0
            except (RedisError, OSError) as exc:
                if "NOGROUP" in str(exc):  # a stream or its group vanished: rediscover all
                    self.streams = set()
                    next_refresh = 0.0
                self._failed("redis", exc)
                await wait_until_set(stop, self._backoff.delay(failures))
                failures += 1
        return True

    async def _read(
        self, batch: _Batch, room: int, now: float, deadline: float, stop: asyncio.Event
    ) -> None:
        """This name's own pending entries first, else new ones, waiting at most until the
        deadline (or the batch's own: `batch_wait_ms` after its first entry, `batch_quiet_ms`
        after its last)."""
        if self._own_pending:
            await self._reread_own(batch, room)
            return
        settings = self.settings
        quiet_s = settings.batch_quiet_ms / 1000
        if batch:
            deadline = min(deadline, batch.deadline(settings.batch_wait_ms / 1000, quiet_s))
        block_ms = min(IDLE_BLOCK_MS, max(1, math.ceil((deadline - now) * 1000)))
        if deadline <= now and self._writing is not None:
            # Due, after the write in flight: look at it again soon, and less often the
            # longer it takes (a write retrying through an outage is not polled 200 times a
            # second).
            took_ms = (now - self._write_started) * 1000
            block_ms = min(IDLE_BLOCK_MS, max(WRITE_POLL_MS, math.ceil(took_ms / 10)))
        before = len(batch)
        await self._read_new(batch, room, block_ms, stop)
        if before and len(batch) == before and time.monotonic() >= batch.grown + quiet_s:
            batch.quiet = True  # nothing came in the whole quiet window

    async def _start_write(self, stop: asyncio.Event) -> bool:
        """Wait for the write in flight, then start writing the batch in hand (after what
        the last write handed back, and its backoff); False once stopping mid-write."""
        if not await self._finish_write(stop):
            return False
        batch, self._batch = self._batch, _Batch()
        self._in_flight = len(batch)
        self._write_started = time.monotonic()
        self._writing = asyncio.create_task(self._write(batch, stop))
        return True

    async def _finish_write(self, stop: asyncio.Event) -> bool:
        """Wait for the write in flight, if any; the entries QuestDB failed on go first into
        the batch in hand, after a pause. False when it stopped with entries still pending."""
        writing = self._writing
        if writing is None:
            return True
        try:
            again = await writing
        finally:
            self._writing = None
            self._in_flight = 0
        if again is None:
            return False
        if again:  # entries QuestDB failed on: delivered again after a pause, before newer ones
            again.extend(self._batch)
            self._batch = again
            deliveries = max(again.deliveries.values(), default=1)
            await wait_until_set(stop, self._backoff.delay(deliveries - 2))
        return True

    async def _refresh(self) -> None:
        """Find streams that appeared (new exchanges) and give them the group."""
        found = await discover_streams(self.client, self.exchanges, self.shard)
        for key in sorted(found - self.streams):
            if await ensure_group(self.client, key, self.group):
                self.log.info(
                    "hot writer: consumer group %s created on %s",
                    self.group,
                    key,
                    extra={"stream": key},
                )
            self._own_pending[key] = b"0"
        for key in self.streams - found:
            self._own_pending.pop(key, None)
            self._claim_cursors.pop(key, None)
            for gauge in (self.metrics.lag, self.metrics.pending):
                with contextlib.suppress(KeyError):
                    gauge.remove(key)
        self.streams = found
        self._new_cursors = {key: ">" for key in sorted(found)}

    async def _reread_own(self, batch: _Batch, room: int) -> None:
        """Entries delivered to this name before a restart and never acknowledged."""
        cursors = dict(self._own_pending)
        count = max(1, room // len(cursors))
        got = await read_group(
            self.client, self.group, self.consumer, cursors, count=count, block_ms=None
        )
        for key in cursors:
            entries = got.get(key, [])
            if not entries:
                self._own_pending.pop(key, None)
                continue
            self._own_pending[key] = entries[-1].id
            counts = await self._deliveries(entries, batch)
            self.metrics.recovered.labels(how="own-pending").inc(batch.add(entries, counts))

    async def _deliveries(
        self, entries: list[StreamEntry], batch: _Batch
    ) -> dict[tuple[str, bytes], int]:
        """Delivery counts of entries delivered before (re-read or claimed): a writer that
        died holding an entry, again and again, has delivered it that many times."""
        return await delivery_counts(
            self.client, self.group, self.consumer, entries, others=len(batch)
        )

    async def _claim(self, batch: _Batch, room: int) -> None:
        """Take over entries idle longer than claim_idle_ms: their writer died or hangs."""
        for key in sorted(self.streams):
            if room <= 0:
                return
            cursor, entries = await claim_idle(
                self.client,
                key,
                self.group,
                self.consumer,
                min_idle_ms=self.settings.claim_idle_ms,
                start=self._claim_cursors.get(key, b"0-0"),
                count=room,
            )
            self._claim_cursors[key] = cursor
            added = batch.add(entries, await self._deliveries(entries, batch) if entries else None)
            room -= added
            if added:
                self.metrics.recovered.labels(how="claimed").inc(added)
                self.log.info(
                    "hot writer: claimed %d idle entries of %s", added, key, extra={"stream": key}
                )

    async def _read_new(self, batch: _Batch, room: int, block_ms: int, stop: asyncio.Event) -> None:
        if not self._new_cursors:
            await wait_until_set(stop, block_ms / 1000)
            return
        # COUNT applies per stream: divided, so a batch stays near batch_size (at most one
        # entry per stream more). Streams that gave all they were asked for are read again at
        # once, sharing the room left, so that a backlog on a few streams fills the batch in
        # a few round trips rather than in ever smaller reads.
        cursors: dict[str, str] = self._new_cursors
        block: int | None = block_ms
        while cursors and room > 0:
            count = max(1, room // len(cursors))
            got = await read_group(
                self.client, self.group, self.consumer, cursors, count=count, block_ms=block
            )
            full: dict[str, str] = {}
            for key, entries in got.items():
                batch.add_new(entries)
                room -= len(entries)
                if len(entries) == count:
                    full[key] = ">"
            cursors, block = full, None  # what is left is there now: no wait

    # --- writing a batch --------------------------------------------------------------------
    async def _write(self, batch: _Batch, stop: asyncio.Event) -> _Batch | None:
        """Write, then acknowledge: records QuestDB took at once, dead letters only once they
        are in md:dlq. Returns the entries to write again (QuestDB failed on them while it
        answered, or did not get to them), each delivered once more; None when stopped with
        part of the batch still pending."""
        self.metrics.batch_size.observe(len(batch))
        limit = self.settings.max_deliveries
        worn: list[StreamEntry] = []
        fresh = batch.entries
        if any(count > limit for count in batch.deliveries.values()):
            worn = [e for e in batch.entries if batch.delivered(e) > limit]
            fresh = [e for e in batch.entries if batch.delivered(e) <= limit]
        decoded = decode_batch(fresh)
        again = _Batch()
        try:
            outcome = await self._retry(stop, "questdb", lambda: self._write_records(decoded))
            failed = outcome.refused.keys() | set(outcome.unattempted)
            written = decoded.entries + decoded.deleted
            if outcome.rejected or failed:
                written = [
                    e
                    for i, e in enumerate(decoded.entries)
                    if i not in outcome.rejected and i not in failed
                ] + decoded.deleted
            await self._retry(stop, "redis", lambda: acknowledge(self.client, self.group, written))
            self.written += len(written)
            dead = decoded.dead + [
                DeadLetter(decoded.entries[i], cause, reason, decoded.records[i])
                for i, (cause, reason) in sorted(outcome.rejected.items())
            ]
            dead += [self._worn_out(entry, batch) for entry in worn]
            if failed:
                refused = [decoded.entries[i] for i in sorted(outcome.refused)]
                for i, reason in outcome.refused.items():
                    batch.errors[(decoded.entries[i].stream, decoded.entries[i].id)] = reason
                self.metrics.retries.labels(cause="refused").inc(len(refused))
                await self._retry(
                    stop,
                    "redis",
                    lambda: redeliver(self.client, self.group, self.consumer, refused),
                )
                for i in sorted(failed):
                    entry = decoded.entries[i]
                    key = (entry.stream, entry.id)
                    more = 1 if i in outcome.refused else 0  # XCLAIM counted one more delivery
                    again.add([entry], {key: batch.delivered(entry) + more})
                    if key in batch.errors:
                        again.errors[key] = batch.errors[key]
                self._refused_warning(outcome.refused, decoded.entries, again)
            if dead:
                await self._dead_letter(dead, stop)
        except _StoppingError:
            self.log.warning(
                "hot writer %s stopping with a batch of %d entries not fully written or "
                "acknowledged: left pending for this consumer name or another writer",
                self.consumer,
                len(batch),
            )
            return None
        return again

    def _worn_out(self, entry: StreamEntry, batch: _Batch) -> DeadLetter:
        """An entry delivered more than hot.max_deliveries times, bound for md:dlq."""
        times = batch.delivered(entry)
        last = batch.errors.get((entry.stream, entry.id))
        why = f"last error: {last}" if last else "its writers stopped with it in hand"
        reason = (
            f"delivered {times} times (hot.max_deliveries is {self.settings.max_deliveries}) "
            f"without being written; {why}"
        )
        record = None
        with contextlib.suppress(DecodeError):
            record = decode_entry_fields(entry.fields) if entry.fields else None
        return DeadLetter(entry, "undeliverable", reason, record)

    def _refused_warning(
        self, refused: dict[int, str], entries: list[StreamEntry], again: _Batch
    ) -> None:
        for i, reason in sorted(refused.items())[:3]:
            entry = entries[i]
            self.log.warning(
                "hot writer: QuestDB failed on %s %s (delivery %d of at most %d): %s",
                entry.stream,
                entry.id.decode(),
                again.delivered(entry) - 1,
                self.settings.max_deliveries,
                reason,
                extra={"stream": entry.stream},
            )

    async def _write_records(self, decoded: DecodedBatch) -> WriteOutcome:
        sink = self._sink
        assert sink is not None, "run() creates the sink before the loop starts"
        return await sink.write(decoded.records)

    async def _dead_letter(self, dead: list[DeadLetter], stop: asyncio.Event) -> None:
        letters = [dead_letter_entry(letter) for letter in dead]
        maxlen = self.config.streams.dlq_maxlen
        await self._retry(stop, "redis", lambda: send_dead_letters(self.client, letters, maxlen))
        await self._retry(
            stop, "redis", lambda: acknowledge(self.client, self.group, [d.entry for d in dead])
        )
        for letter in dead:
            self.metrics.dlq.labels(cause=letter.cause).inc()
        self.dead_lettered += len(dead)
        first = dead[0]
        self.log.warning(
            "hot writer: %d entries to md:dlq, e.g. %s %s: %s",
            len(dead),
            first.entry.stream,
            first.entry.id.decode(),
            first.reason,
            extra={"stream": first.entry.stream},
        )

    async def _retry(
        self, stop: asyncio.Event, cause: str, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """attempt() until it succeeds, with exponential backoff; _StoppingError once a stop
        was requested and it failed again (nothing more is read meanwhile)."""

        def failed(exc: Exception, _pause: float) -> None:
            self._failed(cause, exc)
            if stop.is_set():
                raise _StoppingError from None

        result = await retry_async(
            attempt,
            self._backoff,
            retry_on=(QuestDBUnavailableError, RedisError, OSError),
            on_failure=failed,
            sleep=functools.partial(wait_until_set, stop),
        )
        self._succeeded()
        return result

    def _failed(self, cause: str, exc: BaseException) -> None:
        self.metrics.retries.labels(cause=cause).inc()
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        self._last_error = f"{cause}: {exc}"
        self.log.warning("hot writer: %s failed, retrying: %s", cause, exc)

    def _succeeded(self) -> None:
        self._failing_since = None

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking QuestDB work on the writer's own thread: one flush at a time."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    # --- gauges -----------------------------------------------------------------------------
    async def _watch(self, stop: asyncio.Event) -> None:
        """Lag, pending and WAL gauges every refresh interval, beside the loop, so that they
        stay current while the loop waits on a QuestDB that is down."""
        wal_http = QuestDBHttp(self.questdb.base_url, timeout_s=WAL_CHECK_TIMEOUT_S)
        while not stop.is_set():
            try:
                await self._refresh_gauges(wal_http)
            except Exception:  # a bug here must not stop the gauges for good, nor the writer
                self.metrics.task_errors.labels(task="watch").inc()
                self.log.exception("hot writer: gauges not refreshed, trying again")
            await wait_until_set(stop, self.settings.refresh_interval_s)

    async def _refresh_gauges(self, wal_http: QuestDBHttp) -> None:
        try:
            keys = sorted(self.streams)
            for key, state in (await group_states(self.client, keys, self.group)).items():
                if state is not None:
                    self.metrics.lag.labels(stream=key).set(state.lag)
                    self.metrics.pending.labels(stream=key).set(state.pending)
        except (RedisError, OSError) as exc:
            self.log.debug("hot writer: lag gauges not refreshed: %s", exc)
        try:
            wal = await asyncio.to_thread(wal_states, wal_http)
        except ServiceError as exc:
            self.log.debug("hot writer: WAL gauges not refreshed: %s", exc)
        else:
            for table, table_wal in wal.items():
                self.metrics.wal_unapplied.labels(table=table).set(table_wal.unapplied)
            self._wal_suspended = sorted(t for t, s in wal.items() if s.suspended)


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when stop is set; then _StoppingError if it was: no further
    attempt."""
    if await wait_until_set(stop, seconds):
        raise _StoppingError
