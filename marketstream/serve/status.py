"""The reports the API serves: quality (as `marketstream quality report --format json`) and
archive status (as `marketstream archive status --json`). Blocking: run on a worker thread."""

from __future__ import annotations

import time
from typing import Any

from marketstream.query import hot_queries as hq
from marketstream.serve.context import ServeContext


def quality_report(
    context: ServeContext,
    since: str,
    until: str | None,
    exchange: str | None,
    symbol: str | None,
    *,
    from_first_tick: bool = False,
) -> dict[str, Any]:
    """The report over [since, until) from the hot tier, the dead letters and ingest's book
    counters, as the CLI's (a store that cannot be asked is a note, not a failure): the
    polled sources' section too, `exchange` naming an exchange or a polled source, and
    `from_first_tick` as `--from-first-tick`."""
    from marketstream.quality import render  # noqa: PLC0415
    from marketstream.quality.inputs import report_inputs  # noqa: PLC0415
    from marketstream.quality.report import (  # noqa: PLC0415
        QualityQueries,
        check_min_completeness,
        collect,
    )
    from marketstream.quality.window import parse_window  # noqa: PLC0415
    from marketstream.wiring import endpoint  # noqa: PLC0415

    config, state_dir = context.config, context.state_dir
    now = time.time_ns()
    start, end = parse_window(since, until, now)
    exchange = None if exchange is None else hq.check_exchange(exchange)
    symbol = None if symbol is None else hq.check_symbol(symbol)
    inputs = report_inputs(
        config,
        since=start,
        until=end,
        now=now,
        exchange=exchange,
        min_completeness=check_min_completeness(config.quality.min_completeness),
        redis_url=lambda: endpoint(config, state_dir, "redis"),
        from_first_tick=from_first_tick,
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
