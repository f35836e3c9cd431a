"""One exchange connection kept alive: subscribe, heartbeat, watchdog, reconnect, snapshots.

Transport only: frames go to the `FrameProcessor` and what it returns goes to the
`Publisher`. Every failure (refused connection, handshake error, closed socket, a feed gone
quiet) ends in a reconnect after an exponential backoff with jitter, and the books resync.
The backoff starts over after any session that received frames, however it ended: a feed
that drops now and then reconnects at once, not after the longest wait. An unexpected error
(a bug) ends the session the same way, logged with its traceback and counted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from prometheus_client import Counter
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from marketstream.config import IngestConfig
from marketstream.event_loop import wait_until_set
from marketstream.http_client import get_async
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.processor import FrameProcessor, Processed
from marketstream.ingest.publisher import Publisher
from marketstream.ingest.transport import (
    FeedConnection,
    connect_feed,
    keep_alive,
    subscribe,
)
from marketstream.logs import context_logger
from marketstream.retry import Backoff
from marketstream.schemas.records import Instrument
from marketstream.venues.base.venue import MapSnapshot, SnapshotRequest, Subscription, Venue

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024 * 1024  # the largest REST-sized snapshot frames fit


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Watchdog, backoff and snapshot pacing from the configuration (`from_config`, the one
    place that reads it), and the connection's own timeouts."""

    stale_after_s: float
    backoff_initial_s: float
    backoff_max_s: float
    snapshot_interval_s: float
    open_timeout_s: float = 10.0
    rest_timeout_s: float = 10.0

    @classmethod
    def from_config(cls, ingest: IngestConfig) -> Self:
        return cls(
            stale_after_s=ingest.stale_after_s,
            backoff_initial_s=ingest.backoff_initial_s,
            backoff_max_s=ingest.backoff_max_s,
            snapshot_interval_s=ingest.snapshot_interval_s,
        )


class ReconnectBackoff:
    """The wait before each reconnect: growing while sessions fail without a frame, and
    back to the initial delay after a session that received one, whatever ended it."""

    def __init__(self, settings: RunnerSettings, rng: random.Random) -> None:
        self.policy = Backoff(settings.backoff_initial_s, settings.backoff_max_s, jitter=True)
        self.rng = rng
        self.attempt = 0  # sessions in a row that received nothing

    def after_session(self, *, received_frames: bool) -> float:
        self.attempt = 0 if received_frames else self.attempt + 1
        return self.policy.delay(self.attempt, self.rng)


class Connection:
    """One subscription of one exchange over one WebSocket, for as long as `stop` is unset."""

    def __init__(
        self,
        exchange: Venue,
        url: str,
        subscription: Subscription,
        *,
        processor: FrameProcessor,
        publisher: Publisher,
        metrics: IngestMetrics,
        settings: RunnerSettings,
        rest_url: str | None = None,
        instruments: Sequence[Instrument] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.exchange = exchange
        self.url = exchange.connect_url(url, subscription)
        self.subscription = subscription
        self.processor = processor
        self.publisher = publisher
        self.metrics = metrics
        self.settings = settings
        self.rest_url = rest_url
        # The exchange's instruments, for REST snapshots' sizes; replaced with the mapper.
        self.instruments = instruments
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.connections = 0
        self.session_frames = 0  # frames of the current (or last) session
        self.backoff = ReconnectBackoff(settings, self.rng)
        self.last_frame = time.monotonic()
        self.frames_received = 0  # every session's; /metrics reads it (`FrameCounts`)
        metrics.frames.track(self)
        self._checksums_verified = metrics.checksums_verified.labels(exchange=exchange.name)
        self._snapshots: asyncio.Queue[str] = asyncio.Queue()
        self.log = context_logger(log, exchange=exchange.name)

    @property
    def exchange_name(self) -> str:
        return self.exchange.name

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.session_frames = 0
            try:
                await self._session(stop)
            except (OSError, TimeoutError, InvalidURI, InvalidHandshake, WebSocketException) as exc:
                self.log.warning(
                    "%s: connection to %s failed: %s", self.exchange.name, self.url, exc
                )
            except Exception:  # a bug: logged and counted, and the feed goes on
                self.metrics.session_errors.labels(exchange=self.exchange.name).inc()
                self.log.exception(
                    "%s: connection to %s ended by an unexpected error",
                    self.exchange.name,
                    self.url,
                )
            if stop.is_set():
                break
            delay = self.backoff.after_session(received_frames=self.session_frames > 0)
            self.log.info("%s: reconnecting in %.2fs", self.exchange.name, delay)
            await wait_until_set(stop, delay)

    async def _session(self, stop: asyncio.Event) -> None:
        """One connection's life; `session_frames` counts what it delivered. A helper task
        (watchdog, pinger, snapshots) that fails closes the connection and its error ends the
        session: a session never goes on without them."""
        async with connect_feed(
            self.url,
            open_timeout_s=self.settings.open_timeout_s,
            max_frame_bytes=MAX_FRAME_BYTES,
            max_queue=64,
            connection=FeedConnection,
        ) as ws:
            self.connections += 1
            if self.connections > 1:
                self.metrics.reconnects.labels(exchange=self.exchange.name).inc()
            gauge = self.metrics.connected.labels(exchange=self.exchange.name)
            gauge.inc()
            self.processor.books.reset()  # a new connection means new snapshots
            helpers = [
                asyncio.create_task(self._watchdog(ws, stop)),
                asyncio.create_task(keep_alive(ws, self.exchange)),
                asyncio.create_task(self._snapshot_fetcher(ws)),
            ]
            failed: list[BaseException] = []

            def on_helper_done(task: asyncio.Task[None]) -> None:
                if task.cancelled() or task.exception() is None:
                    return
                failed.append(task.exception())  # type: ignore[arg-type]
                helpers.append(asyncio.create_task(ws.close(1011, "internal error")))

            for task in helpers:
                task.add_done_callback(on_helper_done)
            try:
                await subscribe(ws, self.exchange, self.subscription)
                self._request_all_snapshots()
                assert isinstance(ws, FeedConnection)  # connect_feed(connection=...)
                await self._read(ws, stop)
                if failed:
                    raise failed[0]
            finally:
                gauge.dec()
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)

    async def _read(self, ws: FeedConnection, stop: asyncio.Event) -> None:
        self.last_frame = time.monotonic()
        process, handle, publisher = self.processor.process, self._handle, self.publisher
        async for batch in ws.batches():
            self.last_frame = time.monotonic()  # the batch arrived in one read
            for frame in batch:
                recv_ts = time.time_ns()
                self.frames_received += 1
                self.session_frames += 1
                handle(process(frame, recv_ts), frame, recv_ts)
                if not publisher.has_room:
                    await publisher.wait_for_room()  # backpressure: stop reading
                if stop.is_set():
                    break
            if stop.is_set():
                break
        if not stop.is_set():
            reason = ws.close_reason or "-"
            self.log.warning("%s: connection closed: %s", self.exchange.name, reason)

    def _handle(self, processed: Processed, frame: str | bytes, recv_ts: int) -> None:
        for record in processed.records:
            self.publisher.add(record)
        for rejected in processed.rejected:
            if rejected.mapper_error:
                self.metrics.mapper_errors.labels(exchange=self.exchange.name).inc()
                self.log.warning(
                    "%s: frame sent to md:dlq: %s", self.exchange.name, rejected.reason
                )
            self.publisher.add_dead_letter(
                exchange=self.exchange.name,
                reason=rejected.reason,
                frame=frame,
                recv_ts=recv_ts,
                record=rejected.record,
            )
        if processed.gaps:
            self._resyncing(processed.gaps, self.metrics.gaps, "book sequence gap")
        if processed.checksums_verified:
            self._checksums_verified.inc(processed.checksums_verified)
        if processed.checksum_failures:
            self._resyncing(
                processed.checksum_failures,
                self.metrics.checksum_failures,
                "book checksum mismatch",
            )
        for symbol in processed.resynced:
            self.metrics.resyncs.labels(exchange=self.exchange.name, symbol=symbol).inc()
        for symbol in processed.snapshots_needed:
            self._snapshots.put_nowait(symbol)

    def _resyncing(self, symbols: Iterable[str], counter: Counter, why: str) -> None:
        """Count and log the books that must resync (the processor has asked for snapshots)."""
        for symbol in symbols:
            counter.labels(exchange=self.exchange.name, symbol=symbol).inc()
            self.log.warning(
                "%s %s: %s, resyncing", self.exchange.name, symbol, why, extra={"symbol": symbol}
            )

    async def _watchdog(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        """Close a connection that went quiet, or when asked to stop; the loop reconnects."""
        period = min(1.0, self.settings.stale_after_s / 4)
        while True:
            await asyncio.sleep(period)
            if stop.is_set():
                await ws.close(1000, "shutting down")
                return
            quiet = time.monotonic() - self.last_frame
            if quiet > self.settings.stale_after_s:
                self.log.warning("%s: no frame for %.0fs, reconnecting", self.exchange.name, quiet)
                await ws.close(4000, "stale feed")
                return

    def _request_all_snapshots(self) -> None:
        if self.exchange.snapshot_requests is None or "books" not in self.subscription.channels:
            return
        for symbol in self.subscription.symbols:
            self._snapshots.put_nowait(symbol)

    async def _snapshot_fetcher(self, ws: ClientConnection) -> None:
        """Get fresh books one symbol at a time, paced for the exchange's rate limits.

        Over REST where the exchange serves snapshots; else by resubscribing the
        symbol's book (the feed answers with a snapshot); else by reconnecting.
        """
        requests_for = self.exchange.snapshot_requests
        map_snapshot = self.exchange.map_snapshot
        if requests_for is None or map_snapshot is None or self.rest_url is None:
            await self._resubscribe_books(ws)
            return
        failures: dict[str, int] = {}
        while True:
            symbol = await self._snapshots.get()
            if self.processor.books.book(symbol).synced:
                failures.pop(symbol, None)
                continue  # the feed sent one meanwhile, or an earlier request already synced it
            if await self._apply_rest_snapshot(symbol, requests_for, map_snapshot):
                failures.pop(symbol, None)
            else:  # retried later, backing off so a failing endpoint is not hammered
                failures[symbol] = failures.get(symbol, 0) + 1
                delay = self.backoff.policy.delay(failures[symbol] - 1, self.rng)
                asyncio.get_running_loop().call_later(delay, self._snapshots.put_nowait, symbol)
            await asyncio.sleep(self.settings.snapshot_interval_s)

    async def _apply_rest_snapshot(
        self,
        symbol: str,
        requests_for: Callable[[str, Sequence[str]], list[SnapshotRequest]],
        map_snapshot: MapSnapshot,
    ) -> bool:
        """Fetch and apply one symbol's snapshot; False when it could not be had."""
        assert self.rest_url is not None
        for request in requests_for(self.rest_url, [symbol]):
            body = await self._fetch(request)
            if body is None:
                return False
            recv_ts = time.time_ns()
            try:
                update = map_snapshot(body, request.symbol, recv_ts, self.instruments)
            except Exception as exc:  # FrameError (an error answer, a malformed
                # body) or a mapper bug: the body goes to md:dlq, the book asks again later
                self.publisher.add_dead_letter(
                    exchange=self.exchange.name, reason=str(exc), frame=body, recv_ts=recv_ts
                )
                return False
            self._handle(self.processor.process_update(update), body, recv_ts)
        return True

    async def _resubscribe_books(self, ws: ClientConnection) -> None:
        pause = 1.0 / self.exchange.max_messages_per_s
        while True:
            symbol = await self._snapshots.get()
            resubscribe = self.exchange.resubscribe_book
            if resubscribe is None:
                self.log.warning(
                    "%s: reconnecting to resync the %s book",
                    self.exchange.name,
                    symbol,
                    extra={"symbol": symbol},
                )
                await ws.close(4001, "book resync")
                return
            for message in resubscribe(symbol):
                await ws.send(message)
                await asyncio.sleep(pause)

    async def _fetch(self, request: SnapshotRequest) -> bytes | None:
        try:
            return await get_async(request.url, self.settings.rest_timeout_s)
        except OSError as exc:
            self.log.warning(
                "%s: snapshot %s failed: %s",
                self.exchange.name,
                request.url,
                exc,
                extra={"symbol": request.symbol},
            )
            return None
