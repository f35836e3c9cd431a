"""Validated records into Redis Streams, the latest-price keys and the dead-letter stream.

Records are buffered and written in one pipelined, non-transactional round trip per flush:
per stream one script call that XADDs its records in order (`XADD_ALL`), one SET per
instrument whose price changed, and the DLQ entries. A flush
that fails keeps its batch and retries with backoff, so nothing accepted is lost while Redis
is away; the buffer is bounded, and producers wait for room instead of growing it.

Before a stream's first entry, the consumer groups of the configuration (the hot writers')
are declared on it at id 0, so trimming, which keeps what a group has not acknowledged,
never drops an entry no writer has read, whether or not a writer ever ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Final, Self

from redis.exceptions import RedisError

from marketstream.config import IngestConfig, StreamsConfig
from marketstream.ingest.metrics import IngestMetrics
from marketstream.retry import Backoff, retry_async
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import spec_of
from marketstream.schemas.records import Price, Quote, Record, Trade
from marketstream.tiers.redis_bus import (
    DLQ_STREAM,
    HOT_WRITER_GROUP,
    AsyncRedis,
    LatestPrice,
    dead_letter_fields,
    declare_groups,
    legacy_price_key,
    price_key,
    stream_key,
    trim_stream,
)

log = logging.getLogger(__name__)

RETRY_MAX_S: Final = 5.0  # the longest pause between flush attempts while Redis is away


@dataclass(frozen=True, slots=True)
class PublisherSettings:
    """Batching and bounds from the configuration (`from_config`, the one place that reads
    it), the consumer groups to declare, and the publisher's own retry pacing."""

    batch: int
    interval_s: float
    max_pending: int
    maxlen: int
    dlq_maxlen: int
    trim_interval_s: float
    groups: tuple[str, ...]  # declared on every stream before writing
    legacy_price_keys: bool = False  # also SET the version-1 `price:<exchange>:<symbol>`
    retry_initial_s: float = 0.1
    retry_max_s: float = RETRY_MAX_S

    @classmethod
    def from_config(
        cls,
        ingest: IngestConfig,
        streams: StreamsConfig,
        groups: tuple[str, ...] = (HOT_WRITER_GROUP,),
    ) -> Self:
        return cls(
            batch=ingest.publish_batch,
            interval_s=ingest.publish_interval_ms / 1000,
            max_pending=ingest.max_pending,
            maxlen=streams.maxlen,
            dlq_maxlen=streams.dlq_maxlen,
            trim_interval_s=streams.trim_interval_s,
            groups=groups,
            legacy_price_keys=streams.legacy_price_keys,
        )


# One command per stream per flush instead of one XADD per record: redis-py packs and parses
# every command and reply in Python, which cost more than the record's own encoding. The
# entries are the same as XADD's (field `d`, auto ids, in order). One key per call: on Redis
# Cluster each call stays within a slot. Calls hold at most `publish_batch` entries, so a
# batch that grew while Redis was away does not block Redis in one long script.
XADD_ALL: Final = """
local key = KEYS[1]
for i = 1, #ARGV do
  redis.call('XADD', key, '*', 'd', ARGV[i])
end
return #ARGV
"""


@dataclass(slots=True)
class _Batch:
    streams: dict[str, list[bytes]] = field(default_factory=dict)  # record JSON, in order
    records: int = 0  # entries in `streams`
    dead: list[dict[bytes, bytes]] = field(default_factory=list)
    prices: dict[tuple[str, str], LatestPrice] = field(default_factory=dict)  # (ex, symbol)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (exchange, type) -> n
    first_added: float = 0.0

    def __len__(self) -> int:
        return self.records + len(self.dead)


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a record of one type from one exchange goes, worked out once per pair."""

    stream: str
    count_key: tuple[str, str]  # (exchange, record type)
    priced: bool  # it moves the instrument's latest price


def _route(record: Record) -> _Route:
    spec = spec_of(record)
    return _Route(
        stream_key(spec.table, record.exchange),
        (record.exchange, spec.record_type),
        isinstance(record, Trade | Quote | Price),
    )


class Publisher:
    """Buffers records and dead letters and flushes them to Redis from one background task."""

    def __init__(
        self,
        client: AsyncRedis,
        settings: PublisherSettings,
        metrics: IngestMetrics,
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self._batch = _Batch()
        self._prices: dict[tuple[str, str], LatestPrice] = {}
        self._traded: set[tuple[str, str]] = set()  # instruments priced by a trade by now
        self._streams: set[str] = set()
        self._routes: dict[tuple[type[Record], str], _Route] = {}
        self._declared: set[str] = set()  # streams known to hold the groups
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flushed = asyncio.Condition()
        self._stopping = False
        self.published = 0
        self._in_flight = 0  # entries of the batch being written right now
        self.last_flush_ok = time.monotonic()

    # --- producers -------------------------------------------------------------------------
    def add(self, record: Record) -> None:
        """Queue one validated record; its stream and price key follow in the next flush."""
        route = self._routes.get((type(record), record.exchange))
        if route is None:
            route = self._routes[(type(record), record.exchange)] = _route(record)
        batch = self._batch
        if not batch.records and not batch.dead:
            batch.first_added = time.monotonic()
        queued = batch.streams.get(route.stream)
        if queued is None:
            queued = batch.streams[route.stream] = []
        queued.append(encode_record(record))
        batch.records += 1
        counts = batch.counts
        counts[route.count_key] = counts.get(route.count_key, 0) + 1
        if route.priced:
            self._update_price(record, batch)  # type: ignore[arg-type]  # priced: one of them
        self._after_add(batch)

    def add_dead_letter(
        self,
        *,
        exchange: str,
        reason: str,
        frame: str | bytes,
        recv_ts: int,
        record: Record | None = None,
    ) -> None:
        """Queue rejected input for `md:dlq`; it is never dropped silently."""
        batch = self._batch
        if not batch:
            batch.first_added = time.monotonic()
        encoded = encode_record(record) if record is not None else None
        batch.dead.append(
            dead_letter_fields(
                exchange=exchange, reason=reason, frame=frame, recv_ts=recv_ts, record=encoded
            )
        )
        self.metrics.dlq.labels(exchange=exchange).inc()
        self._after_add(batch)

    def _after_add(self, batch: _Batch) -> None:
        size = len(batch)
        if size >= self.settings.batch:
            self._wake.set()
        if size >= self.settings.max_pending:
            self._room.clear()

    @property
    def buffered(self) -> int:
        """Records and dead letters accepted and not yet in Redis."""
        return len(self._batch)

    @property
    def unflushed(self) -> int:
        """Accepted and not yet confirmed by Redis: buffered plus the batch being written."""
        return len(self._batch) + self._in_flight

    @property
    def has_room(self) -> bool:
        return self._room.is_set()

    async def wait_for_room(self) -> None:
        """Producers await this before reading more input: backpressure, not unbounded memory."""
        await self._room.wait()

    def _update_price(self, record: Trade | Quote | Price, batch: _Batch) -> None:
        key = (record.exchange, record.symbol)
        current = self._prices.get(key)
        if isinstance(record, Quote):
            fallback = record.last_px or (record.bid_px + record.ask_px) / 2
            if current is None:
                current = LatestPrice(fallback, record.ts)
            elif key not in self._traded:
                current.price = fallback
            current.bid, current.ask = record.bid_px, record.ask_px
            current.ts = max(current.ts, record.ts)
        else:  # a Trade or a Price
            if current is None:
                current = LatestPrice(record.price, record.ts)
            else:
                current.price = record.price
                current.ts = max(current.ts, record.ts)
            self._traded.add(key)
        self._prices[key] = current
        batch.prices[key] = current

    # --- the flushing task -------------------------------------------------------------------
    async def run(self) -> None:
        """Flush on size or age until `close`; trim the streams on their own cadence."""
        next_trim = time.monotonic() + self.settings.trim_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.interval_s)
            self._wake.clear()
            await self._flush_with_retry()
            if self._stopping and not self._batch:
                return
            if time.monotonic() >= next_trim:
                await self._trim()
                next_trim = time.monotonic() + self.settings.trim_interval_s

    async def close(self) -> None:
        """Flush everything accepted so far, then stop the task started with `run`."""
        self._stopping = True
        self._wake.set()

    async def flush(self) -> int:
        """Write the current batch once; raise RedisError if Redis refuses (batch kept)."""
        batch = self._batch
        if not batch:
            return 0
        self._batch = _Batch()
        started = time.perf_counter()
        self._in_flight = len(batch)
        try:
            await self._write(batch)
        except BaseException:
            self._restore(batch)
            raise
        finally:
            self._in_flight = 0
        elapsed = time.perf_counter() - started
        self.metrics.publish_latency.observe(elapsed)
        self.metrics.batch_size.observe(len(batch))
        for (exchange, record_type), count in batch.counts.items():
            self.metrics.records.labels(exchange=exchange, type=record_type).inc(count)
        self.published += batch.records
        self.last_flush_ok = time.monotonic()
        if len(self._batch) < self.settings.max_pending:
            self._room.set()
        async with self._flushed:
            self._flushed.notify_all()
        return len(batch)

    def _restore(self, batch: _Batch) -> None:
        """Put a failed batch back in front of whatever arrived meanwhile, order kept."""
        newer = self._batch
        for stream, datas in newer.streams.items():
            batch.streams.setdefault(stream, []).extend(datas)
        batch.records += newer.records
        batch.dead.extend(newer.dead)
        batch.prices.update(newer.prices)
        for key, count in newer.counts.items():
            batch.counts[key] = batch.counts.get(key, 0) + count
        self._batch = batch

    async def _write(self, batch: _Batch) -> None:
        undeclared = batch.streams.keys() - self._declared
        if undeclared and self.settings.groups:
            try:
                await declare_groups(self.client, sorted(undeclared), self.settings.groups)
            except BaseException:
                self._declared.clear()  # Redis may come back empty: declare again then
                raise
        self._declared |= undeclared
        pipe = self.client.pipeline(transaction=False)
        step = self.settings.batch
        for key, datas in batch.streams.items():
            for start in range(0, len(datas), step):
                pipe.execute_command("EVAL", XADD_ALL, 1, key, *datas[start : start + step])
        for fields in batch.dead:
            pipe.xadd(DLQ_STREAM, fields)  # type: ignore[arg-type]
        legacy = self.settings.legacy_price_keys
        for (exchange, symbol), price in batch.prices.items():
            encoded = price.encode()
            pipe.execute_command("SET", price_key(exchange, symbol), encoded)
            if legacy:
                pipe.execute_command("SET", legacy_price_key(exchange, symbol), encoded)
        try:
            await pipe.execute()
        except BaseException:
            self._declared.clear()  # a Redis restarted without its data lost the groups too
            raise
        self._streams.update(batch.streams)
        if batch.dead:
            self._streams.add(DLQ_STREAM)

    async def _flush_with_retry(self) -> None:
        def failed(exc: Exception, pause: float) -> None:
            self.metrics.publish_errors.inc()
            log.warning("redis write failed, retrying in %.1fs: %s", pause, exc)

        await retry_async(
            self.flush,
            Backoff(self.settings.retry_initial_s, self.settings.retry_max_s),
            retry_on=(RedisError, OSError),
            on_failure=failed,
        )

    async def _trim(self) -> None:
        """Trim every stream written to; a failure is logged and counted, and the next
        interval tries again: trimming must never stop publishing."""
        for key in sorted(self._streams):
            maxlen = self.settings.dlq_maxlen if key == DLQ_STREAM else self.settings.maxlen
            try:
                removed = await trim_stream(self.client, key, maxlen)
            except (RedisError, OSError) as exc:
                self.metrics.trim_errors.inc()
                log.warning("trimming %s failed: %s", key, exc, extra={"stream": key})
                return  # Redis is away: the flushes notice and retry
            except Exception:
                self.metrics.trim_errors.inc()
                log.exception("trimming %s failed, trying again later", key, extra={"stream": key})
                continue
            if removed:
                self.metrics.trimmed.labels(stream=key).inc(removed)

    async def wait_flushed(self) -> None:
        """Wait until the buffer is empty (used on shutdown and by tests)."""
        async with self._flushed:
            await self._flushed.wait_for(lambda: not self._batch)
