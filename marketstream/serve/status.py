"""The reports the API serves: quality (as `marketstream quality report --format json`) and
archive status (as `marketstream archive status --json`). Blocking: run on a worker thread."""

from __future__ import annotations

import time
from typing import Any

from marketstream.errors import ServiceError
from marketstream.query import hot_queries as hq
from marketstream.serve.context import ServeContext

NS_PER_DAY = 86_400 * 10**9


def quality_report(
    context: ServeContext,
    since: str,
    until: str | None,
    exchange: str | None,
    symbol: str | None,
) -> dict[str, Any]:
    """The report over [since, until) from the hot tier, the dead letters and ingest's book
    counters, like the CLI's (a store that cannot be asked is a note, not a failure)."""
    from marketstream.quality import book_counters, render  # noqa: PLC0415
    from marketstream.quality.dead_letters import count_dead_letters, read_dead_letters  # noqa: PLC0415
    from marketstream.quality.report import (  # noqa: PLC0415
        QualityQueries,
        ReportInputs,
        check_min_completeness,
        collect,
    )
    from marketstream.quality.window import parse_window  # noqa: PLC0415
    from marketstream.tiers.redis_bus import connect_bus  # noqa: PLC0415
    from marketstream.wiring import endpoint  # noqa: PLC0415

    config, state_dir = context.config, context.state_dir
    now = time.time_ns()
    start, end = parse_window(since, until, now)
    exchange = None if exchange is None else hq.check_exchange(exchange)
    symbol = None if symbol is None else hq.check_symbol(symbol)
    notes: list[str] = []
    horizon = now - config.horizons.hot_days * NS_PER_DAY
    if start < horizon:
        notes.append(
            f"the range starts before the hot horizon ({hq.format_ns(horizon)}): the report "
            "reads QuestDB only, so days the archiver moved on show as missing"
        )
    dead_letters = None
    try:
        client = connect_bus(endpoint(config, state_dir, "redis"))
        try:
            dead_letters = count_dead_letters(read_dead_letters(client, start, end), exchange)
        finally:
            client.close()
    except ServiceError as exc:
        notes.append(f"dead letters n/a: {exc}")
    expected = [
        (name, sym)
        for name, ex in config.enabled_exchanges().items()
        if "trades" in ex.channels
        for sym in ex.symbols
    ]
    inputs = ReportInputs(
        check_min_completeness(config.quality.min_completeness),
        expected=expected,
        dead_letters=dead_letters,
        books=book_counters.read_book_counters(book_counters.default_metrics_urls(config.ingest)),
        notes=notes,
    )
    with QualityQueries.connect(endpoint(config, state_dir, "questdb_pg")) as hot:
        report = collect(hot, start, end, inputs, exchange=exchange, symbol=symbol)
    return render.report_dict(report)


def archive_status(context: ServeContext, moves: int) -> dict[str, Any]:
    from marketstream.archiver.status import status_dict  # noqa: PLC0415
    from marketstream.wiring import build_archiver  # noqa: PLC0415

    archiver = build_archiver(context.config, context.state_dir)
    archiver.prepare()
    return status_dict(archiver, moves)
