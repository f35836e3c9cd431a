"""Instrument lists over REST: each enabled exchange's `instrument_urls`, parsed by its venue.

Every GET goes through `http_client.get_async` with the shared retry helper: network errors,
HTTP 429 and 5xx are retried a few times; anything else, or running out of tries, fails that
exchange's fetch, which is logged in one line naming the exchange and URL. A failed fetch
never raises here: the caller keeps the catalog it had (cached or shipped). A paged listing
(`Venue.next_instrument_page`) is followed to its last page: a list cut short would look whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from marketstream.config import InstrumentsConfig, PipelineConfig
from marketstream.http_client import HttpError, get_async
from marketstream.retry import Backoff, retry_async
from marketstream.schemas.records import Instrument
from marketstream.schemas.validation import InvalidRecordError, Limits, validate
from marketstream.venues.base.venue import Venue
from marketstream.venues.registry import get_venue

log = logging.getLogger(__name__)

# An instrument stamped later than this past the clock is refused (`ts` is the read time).
MAX_FUTURE_SKEW_NS: Final = 60_000_000_000
RETRY_MAX_S: Final = 10.0
MAX_PAGES: Final = 50  # of one listing: far above any venue's (Bybit: 1000 a page), never a loop


@dataclass(frozen=True, slots=True)
class Answer:
    """One REST answer as received: what `record` writes into a recording."""

    url: str
    recv_ns: int
    body: str


@dataclass(frozen=True, slots=True)
class Target:
    """An exchange to ask: its venue and REST base."""

    venue: Venue
    rest_base: str

    @property
    def exchange(self) -> str:
        return self.venue.name


@dataclass(slots=True)
class ExchangeFetch:
    """One exchange's outcome: its instruments, or why there are none this time."""

    exchange: str
    instruments: list[Instrument] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    error: str | None = None  # None: every URL answered and parsed
    refused: int = 0  # instruments that failed validation (logged, not kept)

    @property
    def ok(self) -> bool:
        return self.error is None


class FetchError(OSError):
    """A URL that gave no usable answer after its retries; the message names it."""


def targets(
    config: PipelineConfig,
    names: Sequence[str] | None = None,
    venue_of: Callable[[str], Venue] | None = None,
) -> list[Target]:
    """The exchanges to ask: enabled (or named), whose venue (by default the registry's)
    lists instruments, with a configured `rest_url`. The others keep whatever the cached or
    shipped catalog holds."""
    chosen = list(names) if names else list(config.enabled_exchanges())
    found: list[Target] = []
    for name in chosen:
        venue = venue_of(name) if venue_of is not None else get_venue(name)
        settings = config.exchanges.get(name)  # type: ignore[call-overload]
        if venue.instrument_urls is None or venue.parse_instruments is None:
            log.debug("instruments: %s lists no instruments over REST", name)
            continue
        if settings is None or settings.rest_url is None:
            log.info("instruments: %s has no exchanges.%s.rest_url: not fetched", name, name)
            continue
        found.append(Target(venue, settings.rest_url))
    return found


def _retryable(exc: Exception) -> bool:
    status = getattr(exc, "status", None)
    return status is None or status == 429 or status >= 500


async def fetch_answer(url: str, settings: InstrumentsConfig) -> Answer:
    """One URL's body, with retries; FetchError with the URL and the last reason."""
    tries = 0

    async def attempt() -> Answer:
        nonlocal tries
        tries += 1
        body = await get_async(url, settings.timeout_s)
        return Answer(url, time.time_ns(), body.decode("utf-8", errors="replace"))

    def failed(exc: Exception, pause: float) -> None:
        if tries > settings.retries or not _retryable(exc):
            raise FetchError(f"GET {url} failed: {exc}") from None
        log.info("instruments: GET %s failed (%s), retrying in %.1fs", url, exc, pause)

    backoff = Backoff(settings.retry_initial_s, max(settings.retry_initial_s, RETRY_MAX_S))
    return await retry_async(attempt, backoff, retry_on=(HttpError, OSError), on_failure=failed)


async def listing_pages(
    venue: Venue, url: str, settings: InstrumentsConfig
) -> AsyncIterator[Answer]:
    """The answers of one instrument listing: `url`'s, then each next page's the venue names.
    FetchError for a page that gives no answer or a listing longer than MAX_PAGES; FrameError
    (a ValueError) for an answer whose paging is malformed."""
    for _ in range(MAX_PAGES):
        answer = await fetch_answer(url, settings)
        yield answer
        pager = venue.next_instrument_page
        following = pager(answer.url, answer.body) if pager is not None else None
        if following is None:
            return
        url = following
    raise FetchError(f"GET {url}: the listing runs past {MAX_PAGES} pages")


async def fetch_exchange(target: Target, settings: InstrumentsConfig) -> ExchangeFetch:
    """Every instrument URL of one exchange, parsed and validated; never raises for a bad
    answer (the outcome's `error` says what went wrong, logged once)."""
    venue = target.venue
    assert venue.instrument_urls is not None
    assert venue.parse_instruments is not None
    outcome = ExchangeFetch(target.exchange)
    url = ""
    try:
        for first in venue.instrument_urls(target.rest_base):
            url = first
            async for answer in listing_pages(venue, first, settings):
                url = answer.url
                outcome.answers.append(answer)
                parsed = venue.parse_instruments(url, answer.body, answer.recv_ns)
                outcome.instruments.extend(_valid(target.exchange, parsed, outcome))
    except FetchError as exc:
        outcome.error = str(exc)
    except ValueError as exc:  # FrameError: an answer the parser cannot read
        outcome.error = f"GET {url}: unexpected answer: {exc}"
    except Exception as exc:  # a parser bug costs this exchange's refresh, not the caller
        log.exception("instruments: %s: parsing %s failed", target.exchange, url)
        outcome.error = f"GET {url}: the parser failed: {type(exc).__name__}: {exc}"
    if outcome.error is not None:
        outcome.instruments.clear()  # all or nothing: half a list would look complete
        log.warning(
            "instruments: %s: %s; keeping the cached or shipped catalog",
            target.exchange,
            outcome.error,
        )
    return outcome


def _valid(exchange: str, parsed: list[Instrument], outcome: ExchangeFetch) -> list[Instrument]:
    limits = Limits(time.time_ns(), MAX_FUTURE_SKEW_NS)
    kept: list[Instrument] = []
    first: str | None = None
    for instrument in parsed:
        try:
            validate(instrument, limits)
        except InvalidRecordError as exc:
            outcome.refused += 1
            first = first or f"{instrument.symbol} ({instrument.native_symbol}): {exc}"
            continue
        kept.append(instrument)
    if first is not None:
        log.warning(
            "instruments: %s: %d instruments refused, first %s", exchange, outcome.refused, first
        )
    return kept


async def fetch_all(targets: Sequence[Target], settings: InstrumentsConfig) -> list[ExchangeFetch]:
    """Every target's fetch, concurrently (different hosts), in the targets' order."""
    return list(await asyncio.gather(*(fetch_exchange(t, settings) for t in targets)))
