"""Live records for `/v1/stream`: one plain-XREAD reader per Redis stream, fanned out to every
subscriber of it, and the per-connection session that resumes from the client's last ids.

Why this shape:
- Plain `XREAD`, never the writers' consumer group: a reader here must not acknowledge, claim
  or hold anything the hot writers need.
- One reader per stream however many clients watch it: a hundred clients of `trades:*:*` cost
  one XREAD per stream, not a hundred. A reader stops when its last subscriber leaves.
- Resume: a session attaches to a stream's reader at the reader's position P (nothing awaits
  between joining and reading P, so every entry the reader hands over later is after P), then
  reads (last id, P] itself with XRANGE. Together: everything after the client's last id, once,
  in order. When Redis no longer holds the last id (the stream was trimmed past it) the
  session says so with a `gap` message before the rest: never silence.
- Bounded memory: each session queues at most `queue_max` items; a client that cannot keep up
  fills it and is failed with the reason (the endpoint closes it), instead of the server growing.

Messages (JSON text): `{"type":"records","records":[{"stream","id","record"}, ...]}` and
`{"type":"gap","stream","after","first_id","reason"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

import msgspec
import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError, ResponseError

from marketstream.retry import Backoff
from marketstream.schemas.codec import ENTRY_FIELD
from marketstream.serve.channels import (
    Channel,
    entry_order,
    explicit_streams,
    symbol_filter,
    wildcard_tables,
)
from marketstream.tiers.redis_bus import AsyncRedis, stream_pattern
from marketstream.writers.hot_writer_redis import SCAN_COUNT

log = logging.getLogger(__name__)

START_ID: Final = "0-0"
TRIMMED_REASON: Final = (
    "the stream was trimmed past the given id (streams.maxlen) before this client came back: "
    "records after `after` and before `first_id` may be missing here; read them from the "
    "tiers (GET /v1/... or /v1/replay)"
)


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """How the readers and sessions pace themselves (from `serve.*` configuration)."""

    queue_max: int = 10_000  # items queued per session before the client counts as too slow
    batch: int = 500  # records per message at most
    block_ms: int = 1000  # XREAD BLOCK; below the client's socket timeout
    read_count: int = 1000  # entries per XREAD
    catchup_page: int = 1000  # entries per XRANGE while resuming
    discover_interval_s: float = 2.0  # new streams for an exchange wildcard


class _Symbol(msgspec.Struct):
    """Only the symbol of an entry's record: msgspec skips the other fields unparsed."""

    symbol: str | None = None


_SYMBOL_DECODER: Final = msgspec.json.Decoder(_Symbol)


@dataclass(frozen=True, slots=True)
class Item:
    """One entry as sent: `payload` is `{"stream","id","record"}` JSON, built once per entry
    and shared by every session that sends it."""

    stream: str
    id: str
    symbol: str | None
    payload: bytes


def make_item(stream: str, entry_id: str, data: bytes) -> Item:
    try:
        symbol = _SYMBOL_DECODER.decode(data).symbol
    except (msgspec.DecodeError, msgspec.ValidationError):
        symbol = None  # not a record: sent as it is to `*` subscribers only
        if not data.startswith(b"{"):
            data = orjson.dumps(data.decode(errors="replace"))
    payload = b'{"stream":%b,"id":"%b","record":%b}' % (
        orjson.dumps(stream),
        entry_id.encode(),
        data,
    )
    return Item(stream, entry_id, symbol, payload)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_items(stream: str, raw: Iterable[tuple[Any, Any]]) -> list[Item]:
    items = []
    for entry_id, fields in raw:
        data = (fields or {}).get(ENTRY_FIELD)
        if data is not None:
            items.append(make_item(stream, _text(entry_id), data))
    return items


@dataclass(frozen=True, slots=True)
class _Attach:
    """A control item: start delivering `stream` after `after` (None: from now on)."""

    stream: str
    after: str | None


class Subscriber:
    """One session's inbox: the readers offer items; full means the client is too slow."""

    def __init__(self, queue_max: int) -> None:
        self.queue: asyncio.Queue[Item | _Attach] = asyncio.Queue(maxsize=queue_max)
        self.queue_max = queue_max
        self.filters: dict[str, frozenset[str] | None] = {}
        self.after: dict[str, tuple[int, int]] = {}
        self.failed: str | None = None
        self.too_slow = False
        self.failure = asyncio.Event()

    def offer(self, item: Item) -> None:
        if self.failed is not None:
            return
        wanted = self.filters.get(item.stream, frozenset())
        if wanted is not None and item.symbol not in wanted:
            return
        after = self.after.get(item.stream)
        if after is not None and entry_order(item.id) <= after:
            return  # the client had it already (it resumed past the reader's position)
        self.put(item)

    def put(self, item: Item | _Attach) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.too_slow = True
            self.fail(
                f"client too slow: {self.queue_max} records waiting to be sent "
                "(serve.stream_queue); reconnect with last_ids to resume"
            )

    def fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
            self.failure.set()


class StreamReader:
    """XREAD of one stream from `last_id` on, each entry offered to every subscriber."""

    def __init__(self, hub: LiveHub, key: str, last_id: str) -> None:
        self.hub, self.key, self.last_id = hub, key, last_id
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"serve-xread {self.key}")

    async def _run(self) -> None:
        settings, failures = self.hub.settings, 0
        try:
            while self.subscribers:
                try:
                    reply = await self.hub.client.xread(
                        {self.key: self.last_id},
                        count=settings.read_count,
                        block=settings.block_ms,
                    )
                except RedisError as exc:
                    pause = self.hub.backoff.delay(failures)
                    failures += 1
                    self.hub.reader_errors += 1
                    log.warning("XREAD %s failed (%s); again in %.1f s", self.key, exc, pause)
                    await asyncio.sleep(pause)
                    continue
                failures = 0
                for _key, raw in cast(list[tuple[Any, Any]], reply or []):
                    self._dispatch(_entry_items(self.key, raw))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: every session of this stream learns why, then ends
            log.exception("the reader of %s failed", self.key)
            for subscriber in list(self.subscribers):
                subscriber.fail(f"the server's reader of {self.key} failed: {exc}")
            self.hub.readers.pop(self.key, None)

    def _dispatch(self, items: list[Item]) -> None:
        """Hand a batch over without awaiting, so an attach never falls between two entries."""
        for item in items:
            self.last_id = item.id
            for subscriber in list(self.subscribers):
                subscriber.offer(item)
            self.hub.delivered += 1


class LiveHub:
    """The readers of one server process, shared by every `/v1/stream` session."""

    def __init__(self, client: AsyncRedis, settings: LiveSettings) -> None:
        self.client, self.settings = client, settings
        self.readers: dict[str, StreamReader] = {}
        self._lock = asyncio.Lock()
        self.backoff = Backoff(0.1, 5.0, jitter=True)
        self.reader_errors = 0  # failed XREADs (retried)
        self.delivered = 0  # entries read and handed to the sessions
        self.slow_closes = 0  # sessions failed for a full queue

    async def attach(self, key: str, subscriber: Subscriber) -> str:
        """Join `key`'s reader (started if needed); its position, after which it hands over."""
        async with self._lock:  # one reader per stream even when sessions arrive together
            reader = self.readers.get(key)
            if reader is None:
                reader = StreamReader(self, key, await self._newest_id(key))
                self.readers[key] = reader
                reader.subscribers.add(subscriber)
                reader.start()
                return reader.last_id
            reader.subscribers.add(subscriber)  # no await between this and reading the position
            return reader.last_id

    def detach(self, subscriber: Subscriber) -> None:
        if subscriber.too_slow:
            self.slow_closes += 1
            subscriber.too_slow = False
        for key in list(subscriber.filters):
            reader = self.readers.get(key)
            if reader is None:
                continue
            reader.subscribers.discard(subscriber)
            if not reader.subscribers:
                self.readers.pop(key, None)
                if reader.task is not None:
                    reader.task.cancel()

    async def _newest_id(self, key: str) -> str:
        newest = cast(list[tuple[Any, Any]], await self.client.xrevrange(key, count=1) or [])
        return _text(newest[0][0]) if newest else START_ID

    async def discover(self, tables: set[str]) -> set[str]:
        """Existing contract-v2 streams of `tables` (SCAN, never KEYS)."""
        found: set[str] = set()
        async for key in self.client.scan_iter(
            match=stream_pattern(), count=SCAN_COUNT, _type="stream"
        ):
            name = _text(key)
            if name.rpartition(":")[2] in tables:
                found.add(name)
        return found

    def collect(self) -> Iterator[Metric]:
        """Prometheus figures of the live readers (a custom collector: read when scraped)."""
        yield CounterMetricFamily(
            "marketstream_serve_stream_entries",
            "Redis stream entries read by /v1/stream readers",
            value=self.delivered,
        )
        yield CounterMetricFamily(
            "marketstream_serve_stream_read_errors",
            "XREADs of /v1/stream readers that failed (retried)",
            value=self.reader_errors,
        )
        yield CounterMetricFamily(
            "marketstream_serve_stream_slow_closes",
            "/v1/stream clients closed for letting serve.stream_queue records pile up",
            value=self.slow_closes,
        )
        yield GaugeMetricFamily(
            "marketstream_serve_stream_readers",
            "streams being read for /v1/stream clients now",
            value=len(self.readers),
        )

    async def close(self) -> None:
        tasks = [r.task for r in self.readers.values() if r.task is not None]
        self.readers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(slots=True)
class LiveSession:
    """One client's subscription. `open()` joins the readers of the streams that exist now
    (after it, nothing published is missed) and returns each stream's position; `messages()`
    then yields the JSON text frames to send, resumed after `last_ids`. `subscriber.failure`
    is set when the connection must be closed (the reason in `subscriber.failed`)."""

    hub: LiveHub
    channels: tuple[Channel, ...]
    last_ids: Mapping[str, str]
    subscriber: Subscriber = field(init=False)
    _known: set[str] = field(default_factory=set)
    _pending: list[tuple[str, str, str]] = field(default_factory=list)  # stream, after, until

    def __post_init__(self) -> None:
        self.subscriber = Subscriber(self.hub.settings.queue_max)

    async def open(self) -> dict[str, str]:
        """Join every stream of the channels that exists (or is named outright); for each,
        the id after which this session delivers (the client's last id, or the newest)."""
        tables = wildcard_tables(self.channels)
        streams = explicit_streams(self.channels)
        if tables:
            streams |= {
                s
                for s in await self.hub.discover(tables)
                if any(c.matches_stream(s) for c in self.channels)
            }
        positions = {}
        for stream in sorted(streams):
            self._known.add(stream)
            positions[stream] = await self._join(stream, self.last_ids.get(stream))
        return positions

    async def messages(self) -> AsyncGenerator[str, None]:
        tables = wildcard_tables(self.channels)
        discovery: asyncio.Task[None] | None = None
        try:
            if tables:
                discovery = asyncio.create_task(self._discover_loop(tables), name="serve-discover")
            pending, self._pending = self._pending, []
            for stream, after, until in pending:
                async for message in self._resume(stream, after, until):
                    yield message
            async for message in self._pump():
                yield message
        finally:
            if discovery is not None:
                discovery.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await discovery
            self.hub.detach(self.subscriber)

    def close(self) -> None:
        """Leave every reader (for a session whose `messages()` never ran)."""
        self.hub.detach(self.subscriber)

    async def _discover_loop(self, tables: set[str]) -> None:
        """Streams that appear later (a new exchange) join from their first entry: all of it
        is new to this client. Redis errors are retried next round; anything else (a bug)
        ends the session with the cause, never leaving it without its new streams unsaid."""
        try:
            while self.subscriber.failed is None:
                await asyncio.sleep(self.hub.settings.discover_interval_s)
                try:
                    found = await self.hub.discover(tables)
                except RedisError as exc:
                    log.warning("stream discovery failed (%s); again next round", exc)
                    continue
                for stream in sorted(found - self._known):
                    if any(c.matches_stream(stream) for c in self.channels):
                        self._known.add(stream)
                        self.subscriber.put(_Attach(stream, self.last_ids.get(stream, START_ID)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("stream discovery failed")
            self.subscriber.fail(f"the server's stream discovery failed: {exc}")

    async def _pump(self) -> AsyncIterator[str]:
        queue, batch = self.subscriber.queue, self.hub.settings.batch
        while self.subscriber.failed is None:
            first = await queue.get()
            if isinstance(first, _Attach):
                async for message in self._attach(first):
                    yield message
                continue
            items = [first]
            while len(items) < batch and not queue.empty():
                following = queue.get_nowait()
                if isinstance(following, _Attach):
                    yield records_message(items)
                    items = []
                    async for message in self._attach(following):
                        yield message
                    break
                items.append(following)
            if items:
                yield records_message(items)

    async def _join(self, stream: str, after: str | None) -> str:
        """Join the stream's reader; a catch-up of (after, position] is left pending."""
        subscriber = self.subscriber
        subscriber.filters[stream] = symbol_filter(self.channels, stream)
        position = await self.hub.attach(stream, subscriber)
        if after is None or entry_order(after) >= entry_order(position):
            subscriber.after[stream] = entry_order(after or position)
            return after or position
        subscriber.after[stream] = entry_order(position)
        self._pending.append((stream, after, position))
        return after

    async def _attach(self, attach: _Attach) -> AsyncIterator[str]:
        await self._join(attach.stream, attach.after)
        pending, self._pending = self._pending, []
        for stream, after, until in pending:
            async for message in self._resume(stream, after, until):
                yield message

    async def _resume(self, stream: str, after: str, until: str) -> AsyncIterator[str]:
        gap = await self._trimmed_after(stream, after)
        if gap is not None:
            yield gap
        async for message in self._catch_up(stream, after, until):
            yield message

    async def _trimmed_after(self, stream: str, after: str) -> str | None:
        """A `gap` message when Redis no longer holds the client's last id: the stream was
        trimmed past it, so entries after it may be gone. (Trimming moves the stream's first
        entry on but, before Redis 7.4, not `max-deleted-entry-id`; that one counts XDEL.)"""
        try:
            info = await self.hub.client.xinfo_stream(stream)
        except ResponseError:
            return None  # no such stream: nothing was there to lose
        first = info.get("first-entry")
        first_id = _text(first[0]) if first else None
        deleted = info.get("max-deleted-entry-id")
        trimmed = first_id is not None and entry_order(first_id) > entry_order(after)
        removed = deleted is not None and entry_order(_text(deleted)) > entry_order(after)
        if not (trimmed or removed):
            return None
        return orjson.dumps(
            {
                "type": "gap",
                "stream": stream,
                "after": after,
                "first_id": first_id,
                "reason": TRIMMED_REASON,
            }
        ).decode()

    async def _catch_up(self, stream: str, after: str, until: str) -> AsyncIterator[str]:
        """Entries in (after, until] read with XRANGE, page by page, filtered by symbol."""
        settings, cursor = self.hub.settings, after
        wanted = self.subscriber.filters.get(stream)
        while True:
            raw = cast(
                list[tuple[Any, Any]],
                await self.hub.client.xrange(
                    stream, f"({cursor}", until, count=settings.catchup_page
                )
                or [],
            )
            items = _entry_items(stream, raw)
            if raw:
                cursor = _text(raw[-1][0])
            chosen = [i for i in items if wanted is None or i.symbol in wanted]
            for start in range(0, len(chosen), settings.batch):
                yield records_message(chosen[start : start + settings.batch])
            if len(raw) < settings.catchup_page or cursor == until:
                return


def records_message(items: list[Item]) -> str:
    return (b'{"type":"records","records":[%b]}' % b",".join(i.payload for i in items)).decode()
