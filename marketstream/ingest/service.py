"""`marketstream ingest`: the configured connectors, one publisher, metrics and health.

Everything exchange-specific comes from the venue packages and everything deployment-
specific from the configuration; this module only wires them together and shuts down in
order: connections first, then a final flush of every record already accepted. The publisher
task never ends on its own: if it fails, /healthz says so, the connections stop, what can
still be flushed is, and `run` raises with the cause logged, so the process exits non-zero
instead of staying up with nothing published.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from marketstream.config import ExchangeConfig, IngestConfig, PipelineConfig, redact_url
from marketstream.errors import ConfigError, ServiceError
from marketstream.http_client import get_answer, open_async_client
from marketstream.ingest.instruments import InstrumentKeeper
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.polling.plan import PlannedSource
from marketstream.ingest.polling.poller import OnAnswer, SourcePoller, health_of
from marketstream.ingest.processor import FrameProcessor, processor_for
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.ingest.rest_polls import open_interest_pollers
from marketstream.ingest.runner import Connection, RunnerSettings
from marketstream.metrics_server import bound_port, serve_metrics
from marketstream.schemas.records import Instrument
from marketstream.tiers.redis_bus import connect_bus_async
from marketstream.venues.base.venue import Subscription, Venue
from marketstream.venues.registry import get_venue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlannedConnection:
    exchange: Venue
    config: ExchangeConfig
    subscription: Subscription


def plan_connections(
    config: PipelineConfig, only: Sequence[str] | None = None, group: str | None = None
) -> list[PlannedConnection]:
    """Which connections to open; a channel an exchange does not offer is a config error."""
    enabled = config.enabled_exchanges(group)
    if group is not None and not enabled:
        groups = sorted({ex.group for ex in config.enabled_exchanges().values()})
        raise ConfigError(f"no enabled exchange in group {group!r}: groups are {groups}")
    names = list(only) if only else list(enabled)
    plans: list[PlannedConnection] = []
    for name in names:
        exchange = get_venue(name)
        settings = config.exchanges.get(name)  # type: ignore[call-overload]
        if settings is None:
            raise ConfigError(f"exchange {name!r} is not configured: add exchanges.{name}")
        unsupported = sorted(set(settings.channels) - exchange.channels)
        if unsupported:
            offered = ", ".join(sorted(exchange.channels))
            raise ConfigError(
                f"exchanges.{name}.channels: {name} does not offer {', '.join(unsupported)} "
                f"over WebSocket (it offers {offered})"
            )
        configured = Subscription(settings.symbols, settings.channels)
        parts = exchange.split(configured) if exchange.split is not None else [configured]
        for part in parts:
            per_connection = max(1, exchange.max_streams_per_connection // len(part.channels))
            for start in range(0, len(part.symbols), per_connection):
                chunk = part.symbols[start : start + per_connection]
                plans.append(
                    PlannedConnection(exchange, settings, Subscription(chunk, part.channels))
                )
    return plans


def make_processor(
    exchange: Venue,
    symbols: Sequence[str],
    ingest: IngestConfig,
    instruments: Sequence[Instrument] = (),
) -> FrameProcessor:
    mapper = exchange.make_mapper(symbols, instruments)
    return processor_for(exchange, mapper, ingest, frozenset(symbols))


def configured_symbols(plans: Sequence[PlannedConnection]) -> dict[str, frozenset[str]]:
    """Exchange -> the symbols the planned connections ingest."""
    symbols: dict[str, set[str]] = {}
    for plan in plans:
        symbols.setdefault(plan.exchange.name, set()).update(plan.subscription.symbols)
    return {name: frozenset(found) for name, found in symbols.items()}


class IngestService:
    """The running ingest: its connections, publisher and metrics endpoint."""

    def __init__(
        self,
        config: PipelineConfig,
        redis_url: str,
        only: Sequence[str] | None = None,
        *,
        plans: list[PlannedConnection] | None = None,
        instrument_cache: Path | None = None,
        sources: Sequence[PlannedSource] = (),
        on_answer: OnAnswer | None = None,
    ) -> None:
        """`instrument_cache`: where fetched instruments are kept between runs (the CLI
        passes `<state dir>/instruments.jsonl`); None keeps them in memory only. `sources`:
        the polled REST sources to run beside the connections (`plan_sources`); `on_answer`
        sees each of their answers (`record`)."""
        self.config = config
        self.redis_url = redis_url
        self.plans = plans if plans is not None else plan_connections(config, only)
        self.metrics = IngestMetrics()
        self.client = connect_bus_async(redis_url)
        self.publisher = Publisher(
            self.client,
            PublisherSettings.from_config(config.ingest, config.streams, (config.hot.group,)),
            self.metrics,
        )
        self.instruments = InstrumentKeeper(
            config,
            configured_symbols(self.plans),
            self.publisher,
            self.metrics,
            cache=instrument_cache,
            venue_of={plan.exchange.name: plan.exchange for plan in self.plans}.__getitem__,
        )
        self.instruments.on_change = self._new_mappers
        # Made once the first instrument fetch is done (`run`): mappers need the catalog.
        self.connections: list[Connection] = []
        names = [plan.exchange.name for plan in self.plans]
        self.pollers = open_interest_pollers(config, names, self.publisher, self.metrics)
        self.sources = list(sources)
        self.source_pollers: list[SourcePoller] = []
        self._on_answer = on_answer
        self.metrics_port: int | None = None
        self.failure: str | None = None  # why a task of ours failed; the process then ends

    def _make_connections(self) -> list[Connection]:
        settings = RunnerSettings.from_config(self.config.ingest)
        return [
            Connection(
                plan.exchange,
                plan.config.url,
                plan.subscription,
                processor=make_processor(
                    plan.exchange,
                    plan.subscription.symbols,
                    self.config.ingest,
                    self.instruments.for_exchange(plan.exchange.name),
                ),
                publisher=self.publisher,
                metrics=self.metrics,
                settings=settings,
                rest_url=plan.config.rest_url,
                instruments=self.instruments.for_exchange(plan.exchange.name),
            )
            for plan in self.plans
        ]

    def _new_mappers(self, exchange: str, instruments: tuple[Instrument, ...]) -> None:
        """A refresh changed the exchange's instruments: each of its connections gets a new
        mapper, swapped in one assignment between two frames, so none is lost. A mapper
        that cannot be made leaves the old one in place (logged)."""
        for connection in self.connections:
            if connection.exchange.name != exchange:
                continue
            try:
                mapper = connection.exchange.make_mapper(
                    connection.subscription.symbols, instruments
                )
            except Exception:
                log.exception("instruments: %s: kept the old mapper", exchange)
                continue
            connection.processor.mapper = mapper
            connection.instruments = instruments
        log.info("instruments: %s changed; mappers replaced", exchange)

    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        stale_after = self.config.ingest.stale_after_s
        quiet = {
            f"{c.exchange.name}#{i}": round(now - c.last_frame, 1)
            for i, c in enumerate(self.connections)
        }
        redis_ok = self.publisher.has_room and now - self.publisher.last_flush_ok < 30
        feeds_ok = all(seconds <= stale_after for seconds in quiet.values())
        instruments_ok, instruments = self.instruments.health()
        polled = {p.exchange.name: round(now - p.last_answer, 1) for p in self.pollers}
        poll_limit = stale_after + 2 * self.config.ingest.open_interest_poll_s
        feeds_ok = feeds_ok and all(seconds <= poll_limit for seconds in polled.values())
        sources_ok, sources = health_of(self.source_pollers)
        detail = {
            "redis_ok": redis_ok,
            "seconds_since_last_frame": quiet,
            "seconds_since_last_rest_poll": polled,
            "published": self.publisher.published,
            "unflushed": self.publisher.unflushed,  # `demo` waits for 0 before it counts
            "instruments": instruments,
            "sources": sources,
            "failure": self.failure,
        }
        healthy = redis_ok and feeds_ok and instruments_ok and sources_ok
        return healthy and self.failure is None, detail

    async def run(self, stop: asyncio.Event, metrics_port: int | None = None) -> None:
        await self._check_redis()
        port = self.config.ingest.metrics_port if metrics_port is None else metrics_port
        server = await serve_metrics(
            self.metrics.registry, self.health, self.config.ingest.metrics_host, port
        )
        self.metrics_port = bound_port(server)
        log.info(
            "ingest: %d planned connections, %d polled sources, metrics on http://%s:%d/metrics",
            len(self.plans),
            len(self.sources),
            self.config.ingest.metrics_host,
            self.metrics_port,
        )
        halt = asyncio.Event()  # stop, or a task of ours failed
        flusher = asyncio.create_task(self.publisher.run(), name="publisher")
        connections = asyncio.create_task(self._connections(halt), name="connections")
        refresher = asyncio.create_task(self.instruments.run(halt), name="instruments")
        polling = asyncio.create_task(self._poll_sources(halt), name="sources")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait(
                {flusher, connections, refresher, polling, stopping},
                return_when=asyncio.FIRST_COMPLETED,
            )
            if flusher.done():  # it runs until close(): it failed
                self._failed("the publisher", flusher)
            elif connections.done() and connections.exception() is not None:
                self._failed("a connection", connections)
            elif refresher.done():  # it runs until halt: it failed
                self._failed("the instrument refresh", refresher)
            elif polling.done() and not halt.is_set():  # it runs until halt: it failed
                self._failed("a polled source", polling)
        finally:
            halt.set()
            stopping.cancel()
            if not self.connections:
                connections.cancel()  # still at the first instrument fetch: no need to wait
            await asyncio.gather(connections, refresher, polling, stopping, return_exceptions=True)
            if flusher.done():
                await self._last_flush()
            else:
                await self.publisher.close()
                await flusher  # everything accepted reaches Redis before we exit
            server.close()
            await server.wait_closed()
            await self.client.aclose()
            log.info("ingest stopped after publishing %d records", self.publisher.published)
        if self.failure is not None:
            raise ServiceError(f"ingest stopped: {self.failure}")

    async def _connections(self, halt: asyncio.Event) -> None:
        await self.instruments.start()  # the first fetch: the mappers are made from it
        self.connections = self._make_connections()
        if not self.connections:  # polled sources only: nothing to do here until the stop
            await halt.wait()
            return
        await asyncio.gather(
            *(c.run(halt) for c in self.connections), *(p.run(halt) for p in self.pollers)
        )

    async def _poll_sources(self, halt: asyncio.Event) -> None:
        """Every planned source on its own clock, each with one kept HTTP client; the first
        that fails ends the others (and, through `run`, ingest) with its cause."""
        if not self.sources:
            await halt.wait()
            return
        clients = [
            open_async_client(p.base_url, p.headers, p.config.timeout_s) for p in self.sources
        ]
        try:
            self.source_pollers = [
                SourcePoller(
                    planned.source,
                    planned.config,
                    functools.partial(get_answer, client),
                    publisher=self.publisher,
                    metrics=self.metrics,
                    max_future_skew_ns=self.config.ingest.max_future_skew_ms * 1_000_000,
                    on_answer=self._on_answer,
                )
                for planned, client in zip(self.sources, clients, strict=True)
            ]
            for poller, planned in zip(self.source_pollers, self.sources, strict=True):
                log.info(
                    "ingest: polling %s at %s every %g s for %d tokens (%d request(s) a tick, "
                    "about %s credits a month)",
                    poller.name,
                    redact_url(planned.base_url),
                    planned.config.cadence_s,
                    len(planned.config.symbols),
                    len(poller.targets),
                    f"{poller.credits_per_month:,.0f}",
                )
            await asyncio.gather(*(poller.run(halt) for poller in self.source_pollers))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

    def _failed(self, what: str, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        self.failure = f"{what} task failed: {exc!r}" if exc else f"{what} task ended"
        log.error("ingest: %s; stopping", self.failure, exc_info=exc)

    async def _last_flush(self) -> None:
        """The publisher task is gone: one direct flush of what it held, if Redis takes it."""
        try:
            await self.publisher.flush()
        except Exception:
            log.exception(
                "ingest: %d accepted records could not be flushed", self.publisher.buffered
            )

    async def _check_redis(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise ServiceError(f"Redis at {self.redis_url} unreachable: {exc}") from None
