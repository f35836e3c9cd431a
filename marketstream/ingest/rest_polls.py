"""Data no stream sends, polled over REST: today open interest of Binance USD-M
(`GET /fapi/v1/openInterest`), for every configured derivative whose exchange lists the
`open_interest` channel and polls it (`Venue.open_interest_url`).

One poller per exchange asks for each symbol in turn, then waits `ingest.open_interest_poll_s`.
A request that fails (network, HTTP status) is retried with the ingest backoff, logged and
counted (`marketstream_ingest_rest_poll_errors`); an answer that cannot be read, or a record
that fails validation, goes to `md:dlq` with its reason like any bad frame. The poller never
ends by itself: `/healthz` reports the seconds since each poller's last answer, and an
unexpected error ends its task, which stops ingest with the cause logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from marketstream.config import PipelineConfig
from marketstream.errors import ConfigError
from marketstream.event_loop import wait_until_set
from marketstream.http_client import HttpError, get_async
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher
from marketstream.retry import Backoff, retry_async
from marketstream.schemas.instruments import parse_symbol
from marketstream.schemas.records import Instrument
from marketstream.schemas.validation import InvalidRecordError, Limits, validate
from marketstream.venues.base.mapper import FrameError
from marketstream.venues.base.venue import Venue
from marketstream.venues.registry import get_venue

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0

Fetch = Callable[[str, float], Awaitable[bytes]]


class _StoppingError(Exception):
    """Ingest is stopping: a retry pause ends early."""


class OpenInterestPoller:
    """One exchange's open interest, every `interval_s`, for its derivative symbols."""

    def __init__(
        self,
        exchange: Venue,
        rest_url: str,
        symbols: Sequence[str],
        *,
        interval_s: float,
        publisher: Publisher,
        metrics: IngestMetrics,
        backoff: Backoff,
        max_future_skew_ns: int,
        instruments: Mapping[str, Instrument] | None = None,  # by symbol
        fetch: Fetch = get_async,
    ) -> None:
        if exchange.open_interest_url is None or exchange.parse_open_interest is None:
            raise ValueError(f"{exchange.name} has no open interest to poll over REST")
        self.exchange = exchange
        self.symbols = [s for s in symbols if parse_symbol(s).derivative]
        self.urls = {s: exchange.open_interest_url(rest_url, s) for s in self.symbols}
        self.interval_s = interval_s
        self.publisher = publisher
        self.metrics = metrics
        self.backoff = backoff
        self.max_future_skew_ns = max_future_skew_ns
        self.instruments = instruments or {}
        self._fetch = fetch
        self._parse = exchange.parse_open_interest
        self.last_answer = time.monotonic()  # of the last answer read (or the start)
        self.polls = 0  # completed rounds over every symbol

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set."""
        while not stop.is_set():
            for symbol in self.symbols:
                if stop.is_set():
                    return
                await self._poll(symbol, stop)
            self.polls += 1
            await wait_until_set(stop, self.interval_s)

    async def _poll(self, symbol: str, stop: asyncio.Event) -> None:
        url = self.urls[symbol]
        errors = self.metrics.rest_poll_errors.labels(exchange=self.exchange.name)

        def failed(exc: Exception, pause: float) -> None:
            errors.inc()
            log.warning(
                "%s: open interest of %s: GET %s failed (%s); retrying in %.1f s",
                self.exchange.name, symbol, url, exc, pause,
            )  # fmt: skip

        async def sleep(pause: float) -> None:
            if await wait_until_set(stop, pause):
                raise _StoppingError

        try:
            body = await retry_async(
                lambda: self._fetch(url, REQUEST_TIMEOUT_S),
                self.backoff,
                retry_on=(HttpError, OSError),
                on_failure=failed,
                sleep=sleep,
            )
        except _StoppingError:
            return
        recv_ts = time.time_ns()
        self.last_answer = time.monotonic()
        try:
            record = self._parse(body, symbol, recv_ts, self.instruments.get(symbol))
            validate(record, Limits(recv_ts, self.max_future_skew_ns))
        except (FrameError, InvalidRecordError) as exc:
            self.publisher.add_dead_letter(
                exchange=self.exchange.name, reason=str(exc), frame=body, recv_ts=recv_ts
            )
            return
        self.publisher.add(record)


def open_interest_pollers(
    config: PipelineConfig,
    exchanges: Sequence[str],
    publisher: Publisher,
    metrics: IngestMetrics,
    instruments: Mapping[str, Mapping[str, Instrument]] | None = None,  # exchange -> symbol
) -> list[OpenInterestPoller]:
    """A poller for each of these exchanges that lists `open_interest` and polls it over
    REST; ConfigError when such an exchange has no `rest_url`."""
    pollers: list[OpenInterestPoller] = []
    for name in dict.fromkeys(exchanges):
        settings = config.exchanges.get(name)  # type: ignore[call-overload]
        exchange = get_venue(name)
        if settings is None or "open_interest" not in settings.channels:
            continue
        if exchange.open_interest_url is None:
            continue  # its stream sends open interest
        if settings.rest_url is None:
            raise ConfigError(f"exchanges.{name}: open_interest is polled over REST: set rest_url")
        pollers.append(
            OpenInterestPoller(
                exchange,
                settings.rest_url,
                settings.symbols,
                interval_s=config.ingest.open_interest_poll_s,
                publisher=publisher,
                metrics=metrics,
                backoff=Backoff(config.ingest.backoff_initial_s, config.ingest.backoff_max_s, True),
                max_future_skew_ns=config.ingest.max_future_skew_ms * 1_000_000,
                instruments=(instruments or {}).get(name),
            )
        )
    return pollers
