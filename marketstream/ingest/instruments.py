"""Ingest's instrument catalog: fetched at start, refreshed on a schedule, handed to mappers.

At start the catalog is the shipped snapshot with the disk cache over it, then every exchange
that lists instruments over REST is asked (`instruments.fetch`); a fetch that fails keeps
what was there. Each refresh that changes an exchange's instruments writes the cache and
tells the service (`on_change`), which gives that exchange's connections new mappers. The
configured instruments are published (md:instruments:<exchange>, stored by the hot writer)
at start and whenever one changes. The refresh loop recovers from any error: it is logged
and counted, /healthz says so until a refresh succeeds, and the next interval tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec.structs

from marketstream.config import PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.event_loop import wait_until_set
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher
from marketstream.instruments.catalog import Catalog
from marketstream.instruments.fetch import ExchangeFetch, fetch_all, targets
from marketstream.instruments.snapshot import SHIPPED_SNAPSHOT, load_shipped, overlay
from marketstream.instruments.store import read_instruments, write_instruments
from marketstream.schemas.records import Instrument
from marketstream.venues.base.venue import Venue
from marketstream.venues.registry import get_venue

log = logging.getLogger(__name__)

OnChange = Callable[[str, tuple[Instrument, ...]], None]


def _sans_ts(instrument: Instrument) -> Instrument:
    """The instrument without its read time: what "changed" compares."""
    return msgspec.structs.replace(instrument, ts=0)


class InstrumentKeeper:
    """The catalog of one ingest process and the task that keeps it fresh."""

    def __init__(
        self,
        config: PipelineConfig,
        configured: Mapping[str, frozenset[str]],
        publisher: Publisher,
        metrics: IngestMetrics,
        *,
        cache: Path | None = None,
        shipped: Path = SHIPPED_SNAPSHOT,
        venue_of: Callable[[str], Venue] = get_venue,
    ) -> None:
        """`configured`: exchange -> the symbols this process ingests (published); `cache`:
        where fetched instruments are kept (None: not kept, the shipped snapshot only)."""
        self.config = config
        self.configured = configured
        self.publisher = publisher
        self.metrics = metrics
        self.cache = cache
        self.venue_of = venue_of
        self.on_change: OnChange | None = None
        self._shipped = Catalog(load_shipped(shipped))
        self._fetched: dict[str, list[Instrument]] = self._read_cache()
        self.catalog = self._combine()
        self._published: dict[tuple[str, str], Instrument] = {}
        self._warned_missing: set[tuple[str, str]] = set()
        self.started = asyncio.Event()
        self.last_refresh_ns: int | None = None  # the last refresh that ran to its end
        self.failed_exchanges: dict[str, str] = {}  # exchange -> why its last fetch failed
        self.error: str | None = None  # an unexpected error of the last refresh (a bug)

    # --- the catalog ---------------------------------------------------------------------
    def _read_cache(self) -> dict[str, list[Instrument]]:
        if self.cache is None or not self.cache.is_file():
            return {}
        try:
            cached = read_instruments(self.cache)
        except MarketStreamError as exc:
            log.warning("instruments: ignoring the cache: %s", exc)
            return {}
        by_exchange: dict[str, list[Instrument]] = {}
        for instrument in cached:
            by_exchange.setdefault(instrument.exchange, []).append(instrument)
        return by_exchange

    def _combine(self) -> Catalog:
        return overlay(self._shipped, [i for ins in self._fetched.values() for i in ins])

    def for_exchange(self, exchange: str) -> tuple[Instrument, ...]:
        return self.catalog.for_exchange(exchange)

    # --- start and refresh ---------------------------------------------------------------
    async def start(self) -> None:
        """The first fetch (when enabled) and the first publication; the refresh loop
        begins after it."""
        try:
            if self.config.instruments.enabled:
                await self.refresh()
            else:
                self.publish_configured()
        except Exception as exc:  # ingest starts on the catalog in hand, reported unhealthy
            self.error = f"{type(exc).__name__}: {exc}"
            self.metrics.instrument_refresh_errors.inc()
            log.exception("instruments: the first refresh failed; using the catalog in hand")
            self.publish_configured()
        finally:
            self.started.set()

    async def refresh(self) -> set[str]:
        """Fetch every exchange of this process that lists instruments; return the
        exchanges whose instruments changed (their mappers were replaced)."""
        names = [name for name in self.configured if name in self.config.exchanges]
        if not names:  # polled sources only: no exchange of ours lists instruments
            self.last_refresh_ns = time.time_ns()
            self.error = None
            return set()
        fetched = await fetch_all(
            targets(self.config, names, self.venue_of), self.config.instruments
        )
        changed = self._apply(fetched)
        self.last_refresh_ns = time.time_ns()
        self.error = None
        return changed

    def _apply(self, fetched: list[ExchangeFetch]) -> set[str]:
        before = {name: self._comparable(name) for name in self.configured}
        for outcome in fetched:
            outcome_label = "ok" if outcome.ok else "failed"
            self.metrics.instrument_refreshes.labels(
                exchange=outcome.exchange, outcome=outcome_label
            ).inc()
            if outcome.ok:
                self.failed_exchanges.pop(outcome.exchange, None)
                self._fetched[outcome.exchange] = outcome.instruments
                log.info(
                    "instruments: %s: %d instruments fetched",
                    outcome.exchange,
                    len(outcome.instruments),
                )
            else:
                self.failed_exchanges[outcome.exchange] = outcome.error or "failed"
        self.catalog = self._combine()
        changed = {name for name in self.configured if self._comparable(name) != before[name]}
        for name in sorted(changed):
            if self.on_change is not None:
                self.on_change(name, self.catalog.for_exchange(name))
        self.publish_configured()
        # Last: a cache that cannot be written (reported by the caller) costs the cache only.
        if any(outcome.ok for outcome in fetched) and self.cache is not None:
            write_instruments(self.cache, [i for ins in self._fetched.values() for i in ins])
        return changed

    def _comparable(self, exchange: str) -> dict[str, Instrument]:
        return {i.symbol: _sans_ts(i) for i in self.catalog.for_exchange(exchange)}

    def publish_configured(self) -> int:
        """Queue the configured instruments that are new or changed since last published."""
        queued = 0
        for exchange, symbols in self.configured.items():
            for symbol in sorted(symbols):
                instrument = self.catalog.get(exchange, symbol)
                if instrument is None:
                    self._missing(exchange, symbol)
                    continue
                key = (exchange, symbol)
                shown = _sans_ts(instrument)
                if self._published.get(key) == shown:
                    continue
                self.publisher.add(instrument)
                self._published[key] = shown
                queued += 1
        return queued

    def _missing(self, exchange: str, symbol: str) -> None:
        venue = self.venue_of(exchange)
        if venue.parse_instruments is None or (exchange, symbol) in self._warned_missing:
            return  # a venue without instrument lists: its mapper needs none
        self._warned_missing.add((exchange, symbol))
        log.warning(
            "instruments: %s: no instrument metadata for the configured %s "
            "(not listed by the exchange, the cache or the shipped snapshot)",
            exchange,
            symbol,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every `instruments.refresh_interval_s` until `stop`; never ends on an
        error: it is logged, counted, shown on /healthz, and the next interval retries."""
        if not self.config.instruments.enabled:
            await stop.wait()
            return
        await self.started.wait()
        interval = self.config.instruments.refresh_interval_s
        while not stop.is_set():
            if await wait_until_set(stop, interval):
                return
            try:
                await self.refresh()
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                self.metrics.instrument_refresh_errors.inc()
                log.exception("instruments: the refresh failed; retrying in %.0fs", interval)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Unhealthy only while a refresh is failing for an unexpected reason: an exchange's
        REST being away leaves the feeds working on the catalog in hand (reported)."""
        detail = {
            "enabled": self.config.instruments.enabled,
            "last_refresh_ns": self.last_refresh_ns,
            "failed_exchanges": dict(self.failed_exchanges),
            "error": self.error,
            "known": len(self.catalog),
        }
        return self.error is None, detail
