"""What a quality report needs besides the hot tier, gathered from the configuration, Redis
and ingest's counters: one place for `marketstream quality report` and the API's /v1/quality,
so that both report the same instruments, notes and dead letters."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from marketstream.config import PipelineConfig
from marketstream.errors import ServiceError
from marketstream.quality import book_counters
from marketstream.quality.dead_letters import (
    DeadLetterCounts,
    count_dead_letters,
    read_dead_letters,
)
from marketstream.quality.polled import polled_symbols, tick_grace_ns
from marketstream.quality.report import ReportInputs
from marketstream.query.hot_queries import format_ns
from marketstream.tiers.redis_bus import connect_bus

NS_PER_DAY = 86_400 * 10**9


def configured_instruments(config: PipelineConfig) -> list[tuple[str, str]]:
    """Every enabled instrument whose trades are ingested: each is expected to trade."""
    return [
        (name, symbol)
        for name, exchange in config.enabled_exchanges().items()
        if "trades" in exchange.channels
        for symbol in exchange.symbols
    ]


def horizon_notes(config: PipelineConfig, since: int, now: int) -> list[str]:
    """A note when the range starts before the hot horizon (the report reads QuestDB only)."""
    horizon = now - config.horizons.hot_days * NS_PER_DAY
    if since >= horizon:
        return []
    return [
        f"the range starts before the hot horizon ({format_ns(horizon)}, horizons.hot_days = "
        f"{config.horizons.hot_days}): the report reads QuestDB only, so days the archiver "
        "moved on show as missing"
    ]


def dead_letters(
    redis_url: Callable[[], str],
    since: int,
    until: int,
    exchange: str | None,
    notes: list[str],
) -> DeadLetterCounts | None:
    """md:dlq counted in the range; None with a note in `notes` when Redis is not to be had
    (`redis_url` is resolved here, so that a missing endpoint is a note too)."""
    try:
        client = connect_bus(redis_url())
        try:
            return count_dead_letters(read_dead_letters(client, since, until), exchange)
        finally:
            client.close()
    except ServiceError as exc:
        notes.append(f"dead letters n/a: {exc}")
        return None


def report_inputs(
    config: PipelineConfig,
    *,
    since: int,
    until: int,
    now: int,
    exchange: str | None,
    min_completeness: float,
    redis_url: Callable[[], str],
    ingest_metrics: Sequence[str] = (),
    from_first_tick: bool = False,
) -> ReportInputs:
    """The configured instruments and polled tokens, the horizon note, the dead letters and
    the book counters (from `ingest_metrics`, else ingest's configured /metrics)."""
    notes = horizon_notes(config, since, now)
    counted = dead_letters(redis_url, since, until, exchange, notes)
    books = book_counters.read_book_counters(
        list(ingest_metrics) or book_counters.default_metrics_urls(config.ingest)
    )
    return ReportInputs(
        min_completeness,
        expected=configured_instruments(config),
        dead_letters=counted,
        books=books,
        notes=notes,
        polled=polled_symbols(config),
        now_ns=now,
        tick_grace_ns=tick_grace_ns(config),
        from_first_tick=from_first_tick,
    )
