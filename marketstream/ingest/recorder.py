"""`marketstream record`: capture an exchange feed, as received, into a recording file.

It connects, subscribes and pings over the ingest runner's transport (`transport.py`) with
the venue's own rules, so a capture replays with `marketstream replay-server` exactly as the
pipeline would see the live feed, including the REST book snapshots a delta-only feed needs:
those are fetched after every (re)subscription and written as lines whose url is the REST URL.
The exchange's instrument lists (`Venue.instrument_urls`) are fetched once at the start and
written the same way, before any frame, so `normalize` and replays map the capture with the
instruments it was received with, offline.

A subscription the venue splits across endpoints (candles on another endpoint, spot and
perpetuals on two) is recorded over one connection per part, concurrently, into the one
file; each line's url is its connection's, which is how replay and normalize tell the parts
apart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from marketstream.config import InstrumentsConfig, PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.http_client import get_async
from marketstream.ingest.transport import (
    connect_feed,
    keep_alive,
    subscribe,
)
from marketstream.instruments.fetch import FetchError, listing_pages
from marketstream.logs import context_logger
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter
from marketstream.retry import Backoff
from marketstream.schemas.instruments import parse_symbol
from marketstream.signals import run_until_signal
from marketstream.venues.base.feed import check_channels
from marketstream.venues.base.venue import Subscription, Venue
from marketstream.venues.registry import get_venue

MAX_FRAME_BYTES: Final = 64 << 20  # a level2 snapshot of a busy product is MBs
HTTP_TIMEOUT_S: Final = 10.0
RECONNECT_ATTEMPTS: Final = 5  # consecutive failed reconnects before giving up


# Between reconnects: short, since a capture misses what arrives meanwhile.
RECONNECT_BACKOFF: Final = Backoff(initial_s=0.5, max_s=10.0, jitter=True)


# A line waits at most FLUSH_AFTER_S + FLUSH_CHECK_S before it is written: a kill loses <= 1 s.
FLUSH_AFTER_S: Final = 0.75
FLUSH_CHECK_S: Final = 0.25

Warn = Callable[[str], None]

log = logging.getLogger(__name__)


def _log_warnings(exchange: str) -> Warn:
    """Warnings as log records that carry the exchange."""
    logger = context_logger(log, exchange=exchange)
    return logger.warning


@dataclass(frozen=True, slots=True)
class RecordPart:
    """One connection of a recording: the URL to connect to and what to subscribe there."""

    url: str
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class RecordTarget:
    """What to record: the subscription as given, its REST base, and the connections
    (`parts`) the exchange serves it over: one, unless `Venue.split` divides it."""

    exchange: Venue
    rest_url: str | None
    subscription: Subscription
    parts: tuple[RecordPart, ...]

    @property
    def url(self) -> str:
        """The feed URL, or the parts' URLs comma-separated (for messages)."""
        return ", ".join(part.url for part in self.parts)


@dataclass(slots=True)
class RecordStats:
    frames: int = 0  # WebSocket text frames written
    snapshots: int = 0  # REST book snapshots written
    instrument_lists: int = 0  # REST instrument lists written
    connections: int = 0
    binary_frames: int = 0  # not text: not recordable in this format, counted and reported
    snapshot_failures: int = 0


def resolve_target(
    name: str,
    *,
    url: str | None = None,
    rest_url: str | None = None,
    symbols: Sequence[str] = (),
    channels: Sequence[str] = (),
    load_config: Callable[[], PipelineConfig],
) -> RecordTarget:
    """Fill what was not given from the configuration (read only when needed) and check it.

    A `url` given without `rest_url` means no REST snapshots: a custom feed (a replay
    server) must not be mixed with the configured exchange's REST endpoint. Where the
    exchange splits the subscription, each part gets its own connection URL.
    """
    exchange = get_venue(name)
    if url is None or not symbols or not channels:
        exchanges = load_config().exchanges.items()
        configured = next((config for key, config in exchanges if key == name), None)
        if configured is None:
            raise MarketStreamError(
                f"exchange {name!r} is not in the configuration: give --url, --symbols "
                "and --channels"
            )
        if url is None:
            url, rest_url = configured.url, rest_url or configured.rest_url
        symbols = symbols or configured.symbols
        channels = channels or configured.channels
    checked_symbols = tuple(_symbols(symbols))
    checked_channels = tuple(check_channels(exchange.name, channels, exchange.channels))
    subscription = Subscription(checked_symbols, checked_channels)
    split = exchange.split
    subscriptions = split(subscription) if split is not None else [subscription]
    if not subscriptions:
        raise MarketStreamError(
            f"{exchange.name}: nothing to subscribe for {', '.join(subscription.channels)} of "
            f"{', '.join(subscription.symbols)}"
        )
    parts = []
    for part in subscriptions:
        exchange.subscribe_messages(part)  # wrong symbols for this market fail here
        parts.append(RecordPart(exchange.connect_url(url, part), part))
    return RecordTarget(exchange, rest_url, subscription, tuple(parts))


def _symbols(symbols: Sequence[str]) -> list[str]:
    for symbol in symbols:
        try:
            parse_symbol(symbol)
        except ValueError as exc:
            raise MarketStreamError(str(exc)) from None
    return list(symbols)


async def record(
    target: RecordTarget,
    out: Path,
    *,
    duration_s: float | None = None,
    max_frames: int | None = None,
    stop: asyncio.Event | None = None,
    snapshot_interval_s: float = 0.5,
    warn: Warn | None = None,
    instruments: InstrumentsConfig | None = None,
) -> RecordStats:
    """Record until `duration_s`, `max_frames` or `stop`; flush and return the counts.

    Ending by duration or frame count waits for REST snapshots still in flight (so the
    capture has them); `stop` (a signal) ends at once. Warnings go to `warn`, by default
    to the log.
    """
    if warn is None:
        warn = _log_warnings(target.exchange.name)
    with RecordingWriter(out, flush_interval_s=FLUSH_AFTER_S) as writer:
        recorder = _Recorder(target, writer, max_frames, snapshot_interval_s, warn)
        recorder.instruments = instruments or InstrumentsConfig()
        flusher = asyncio.create_task(_flush_periodically(writer))
        main = asyncio.create_task(recorder.run())
        waiters: list[asyncio.Future[Any]] = [main]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        interrupted = True  # unless the wait below ends normally
        try:
            await asyncio.wait(waiters, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
            interrupted = stop is not None and stop.is_set()
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
            await recorder.finish_snapshots(cancel=interrupted)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        if not main.cancelled() and main.exception() is not None:
            raise cast(BaseException, main.exception())
    return recorder.stats


async def _flush_periodically(writer: RecordingWriter) -> None:
    while True:
        await asyncio.sleep(FLUSH_CHECK_S)
        writer.flush_if_due()


@dataclass(slots=True)
class _Recorder:
    """The target's parts recorded concurrently into one writer, with shared counts."""

    target: RecordTarget
    writer: RecordingWriter
    max_frames: int | None
    snapshot_interval_s: float
    warn: Warn
    stats: RecordStats = field(default_factory=RecordStats, init=False)
    instruments: InstrumentsConfig = field(default_factory=InstrumentsConfig, init=False)
    _snapshots: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _warned_no_rest: bool = field(default=False, init=False)

    async def run(self) -> None:
        """The instrument lists first, then until max_frames (then every part stops) or
        until a part fails for good (then the others are stopped and its error raised)."""
        await self.record_instruments()
        tasks = [asyncio.create_task(_PartRecorder(self, part).run()) for part in self.target.parts]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise cast(BaseException, task.exception())

    async def record_instruments(self) -> None:
        """Each instrument list the venue serves, as received; a failed one is a warning
        (the capture then normalizes with the shipped snapshot)."""
        venue = self.target.exchange
        if venue.instrument_urls is None or self.target.rest_url is None:
            return
        for url in venue.instrument_urls(self.target.rest_url):
            try:  # every page or none: a listing cut short would normalize as if whole
                pages = [answer async for answer in listing_pages(venue, url, self.instruments)]
            except (FetchError, ValueError) as exc:  # ValueError: FrameError, bad paging
                self.warn(f"instrument list not recorded: {exc}")
                continue
            for answer in pages:
                self.writer.write(
                    RecordedFrame(answer.recv_ns, venue.name, answer.url, answer.body)
                )
                self.stats.instrument_lists += 1

    def enough(self) -> bool:
        return self.max_frames is not None and self.stats.frames >= self.max_frames

    def binary(self) -> None:
        if self.stats.binary_frames == 0:
            self.warn("binary frames are not recorded (the format holds text frames)")
        self.stats.binary_frames += 1

    def start_snapshots(self, subscription: Subscription) -> None:
        """REST book snapshots of the part's symbols, when the part has books (as ingest)."""
        requests = self.target.exchange.snapshot_requests
        if requests is None or "books" not in subscription.channels:
            return
        if self.target.rest_url is None:
            if not self._warned_no_rest:
                self._warned_no_rest = True
                self.warn("no REST URL (--rest-url): book snapshots are not recorded")
            return
        urls = [r.url for r in requests(self.target.rest_url, subscription.symbols)]
        task = asyncio.create_task(self._fetch_snapshots(urls))
        self._snapshots.add(task)
        task.add_done_callback(self._snapshots.discard)

    async def _fetch_snapshots(self, urls: list[str]) -> None:
        for index, url in enumerate(urls):
            if index:
                await asyncio.sleep(self.snapshot_interval_s)  # REST rate limits
            try:
                body = (await get_async(url, HTTP_TIMEOUT_S)).decode()
            except (OSError, UnicodeDecodeError) as exc:
                self.stats.snapshot_failures += 1
                self.warn(f"snapshot {url} failed: {exc}")
                continue
            name = self.target.exchange.name
            self.writer.write(RecordedFrame(time.time_ns(), name, url, body))
            self.stats.snapshots += 1

    async def finish_snapshots(self, *, cancel: bool) -> None:
        for task in list(self._snapshots):
            if cancel:
                task.cancel()
        await asyncio.gather(*self._snapshots, return_exceptions=True)


class _PartRecorder:
    """One part's connection at a time, reconnecting when the exchange closes it."""

    def __init__(self, recorder: _Recorder, part: RecordPart) -> None:
        self.recorder = recorder
        self.part = part
        self.connections = 0  # this part's: its first connection failing is fatal
        self.rng = random.Random()  # noqa: S311 - jitter, not cryptography

    async def run(self) -> None:
        """Returns once the recording has max_frames; raises when it cannot go on."""
        recorder, url = self.recorder, self.part.url
        failures = 0
        while not recorder.enough():
            try:
                async with connect_feed(
                    url, open_timeout_s=HTTP_TIMEOUT_S, max_frame_bytes=MAX_FRAME_BYTES
                ) as ws:
                    self.connections += 1
                    recorder.stats.connections += 1
                    failures = 0
                    if await self._session(ws):
                        return
                recorder.warn(f"{url} closed the connection ({ws.close_code}); reconnecting")
            except ConnectionClosed as exc:
                recorder.warn(f"{url} closed ({exc}); reconnecting")
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                if self.connections == 0:
                    raise MarketStreamError(
                        f"cannot connect to {url}: {exc or type(exc).__name__}"
                    ) from None
                failures += 1
                if failures > RECONNECT_ATTEMPTS:
                    raise MarketStreamError(
                        f"{url}: {failures} reconnects failed, last: {exc}"
                    ) from None
                recorder.warn(f"reconnect to {url} failed ({exc}); retrying")
            await asyncio.sleep(RECONNECT_BACKOFF.delay(failures, self.rng))

    async def _session(self, ws: ClientConnection) -> bool:
        """Subscribe, fetch snapshots alongside, write frames: True at max_frames, False
        when the exchange closed the connection cleanly."""
        recorder = self.recorder
        exchange = recorder.target.exchange
        await subscribe(ws, exchange, self.part.subscription)
        recorder.start_snapshots(self.part.subscription)
        pinger = asyncio.create_task(keep_alive(ws, exchange))
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    recorder.binary()
                    continue
                if recorder.enough():  # another part reached it first
                    return True
                recv_ns = time.time_ns()
                recorder.writer.write(RecordedFrame(recv_ns, exchange.name, self.part.url, message))
                recorder.stats.frames += 1
                if recorder.enough():
                    return True
            return False
        finally:
            pinger.cancel()


def record_until_signal(
    target: RecordTarget,
    out: Path,
    *,
    duration_s: float | None = None,
    max_frames: int | None = None,
) -> RecordStats:
    """`record` in a fresh event loop, stopped cleanly by SIGINT or SIGTERM."""

    return run_until_signal(
        lambda stop: record(target, out, duration_s=duration_s, max_frames=max_frames, stop=stop)
    )


__all__ = [
    "RecordPart",
    "RecordStats",
    "RecordTarget",
    "record",
    "record_until_signal",
    "resolve_target",
]
