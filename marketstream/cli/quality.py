"""`marketstream quality report` and `marketstream backfill`: parsing and printing; the work
is in `marketstream.quality`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from marketstream.cli.common import Commands, add_command, config_of
from marketstream.cli.output import print_json

if TYPE_CHECKING:
    from marketstream.config import PipelineConfig
    from marketstream.quality.backfill import BackfillResult, FetchTask
    from marketstream.quality.report import InstrumentQuality, QualityQueries
    from marketstream.venues.base.venue import Venue

_TIME_HELP = "a duration back from now (30m, 24h, 7d), ISO-8601 (no offset: UTC) or epoch ns"
_FORMATS = ("table", "json")


def add_commands(commands: Commands) -> None:
    quality = commands.add_parser("quality", help="data quality of the hot tier")
    what = quality.add_subparsers(title="quality commands", metavar="WHAT")
    report = add_command(
        what,
        "report",
        _cmd_quality_report,
        "per exchange and symbol: minutes without trades, missing trade ids, book "
        "resyncs, dead letters, worst freshness; per polled source and token: expected, "
        "missed and duplicate ticks, price age; exit 1 below --min-completeness or on a "
        "missed tick",
        state_dir=True,
    )
    _add_range(report)
    report.add_argument("--exchange", metavar="EX", help="only this exchange or polled source")
    report.add_argument("--symbol", metavar="S", help="only this symbol, e.g. BTC-USDT")
    report.add_argument(
        "--min-completeness",
        metavar="X",
        help="share of minutes with a trade each instrument needs, 0.99 or 99%% "
        "(default: quality.min_completeness)",
    )
    report.add_argument(
        "--from-first-tick",
        action="store_true",
        help="count a polled source's expected ticks from its first stored tick in the range, "
        "not from the range start (a poller started mid-range is not blamed for the time "
        "before it ran)",
    )
    report.add_argument(
        "--ingest-metrics",
        action="append",
        metavar="HOST:PORT",
        help="an ingest process's /metrics, for book gaps and resyncs (repeatable; default: "
        "ingest.metrics_host:ingest.metrics_port)",
    )
    _add_format(report)

    backfill = add_command(
        commands,
        "backfill",
        _cmd_backfill,
        "refill missing trades of one instrument from the exchange's REST API "
        "(where the venue serves past trades), at most a day per run",
        state_dir=True,
    )
    backfill.add_argument("--exchange", required=True, metavar="EX")
    backfill.add_argument("--symbol", required=True, metavar="S", help="e.g. BTC-USDT")
    _add_range(backfill)
    backfill.add_argument(
        "--dry-run", action="store_true", help="print what would be fetched; fetch nothing"
    )
    _add_format(backfill)


def _add_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="24h", metavar="T", help=f"{_TIME_HELP} (default: 24h)")
    parser.add_argument("--until", metavar="T", help="exclusive; as --since (default: now)")


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", default="table", metavar="F", help="table (default) or json (one document)"
    )


def _check_format(text: str) -> str:
    from marketstream.query.hot_queries import QueryInputError  # noqa: PLC0415

    if text not in _FORMATS:
        raise QueryInputError(f"--format {text!r} is not known: expected table or json")
    return text


# --- quality report ---------------------------------------------------------------------------


def _cmd_quality_report(args: argparse.Namespace) -> int:
    from marketstream.quality import render  # noqa: PLC0415
    from marketstream.quality.book_counters import metrics_url  # noqa: PLC0415
    from marketstream.quality.inputs import report_inputs  # noqa: PLC0415
    from marketstream.quality.report import check_min_completeness, collect  # noqa: PLC0415
    from marketstream.quality.window import parse_window  # noqa: PLC0415
    from marketstream.query import hot_queries as hq  # noqa: PLC0415
    from marketstream.wiring import endpoint  # noqa: PLC0415

    output = _check_format(args.format)  # every input is checked before a store is asked
    now = time.time_ns()
    since, until = parse_window(args.since, args.until, now)
    exchange = None if args.exchange is None else _check_feed(args.exchange)
    symbol = None if args.symbol is None else hq.check_symbol(args.symbol)
    urls = [metrics_url(u) for u in args.ingest_metrics or ()]
    config = config_of(args)
    threshold = check_min_completeness(
        config.quality.min_completeness if args.min_completeness is None else args.min_completeness
    )
    inputs = report_inputs(
        config,
        since=since,
        until=until,
        now=now,
        exchange=exchange,
        min_completeness=threshold,
        redis_url=lambda: endpoint(config, args.state_dir, "redis"),
        ingest_metrics=urls,
        from_first_tick=args.from_first_tick,
    )
    with _hot(config, args) as hot:
        report = collect(hot, since, until, inputs, exchange=exchange, symbol=symbol)
    if output == "json":
        print_json(render.report_dict(report))
    else:
        for line in render.report_lines(report):
            print(line)
    return 0 if report.passed else 1


def _check_feed(name: str) -> str:
    """An exchange, or a polled source (whose rows are prices, not trades)."""
    from marketstream.query.hot_queries import QueryInputError  # noqa: PLC0415
    from marketstream.schemas.instruments import FEEDS  # noqa: PLC0415

    if name not in FEEDS:
        raise QueryInputError(
            f"--exchange {name!r} is not known: expected an exchange or a polled source, "
            f"one of {', '.join(FEEDS)}"
        )
    return name


# --- backfill ---------------------------------------------------------------------------------


def _cmd_backfill(args: argparse.Namespace) -> int:
    from marketstream.quality import backfill as bf  # noqa: PLC0415
    from marketstream.quality.window import parse_window  # noqa: PLC0415
    from marketstream.query import hot_queries as hq  # noqa: PLC0415

    output = _check_format(args.format)
    venue = bf.check_backfill_exchange(hq.check_exchange(args.exchange))
    exchange = venue.name
    symbol = hq.check_symbol(args.symbol)
    now = time.time_ns()
    since, until = parse_window(args.since, args.until, now)
    config = config_of(args)
    rest_url = _rest_url(config, exchange)
    bf.check_backfill_range(since, until, now, config.horizons.hot_days)
    with _hot(config, args) as hot:
        before = _instrument(hot, exchange, symbol, since, until)
        tasks = bf.plan_backfill(before, since, until, sequential_ids=venue.sequential_trade_ids)
        after: InstrumentQuality | None = None
        if args.dry_run:
            result = bf.BackfillResult(tasks)
        else:
            result = _fetch_and_write(
                config, args, venue=venue, symbol=symbol, rest_url=rest_url, tasks=tasks
            )
            after = _instrument(hot, exchange, symbol, since, until)
    _print_backfill(
        result,
        after,
        exchange=exchange,
        symbol=symbol,
        since=since,
        until=until,
        output=output,
    )
    return 0


def _hot(config: PipelineConfig, args: argparse.Namespace) -> QualityQueries:
    from marketstream.quality.report import QualityQueries  # noqa: PLC0415
    from marketstream.wiring import endpoint  # noqa: PLC0415

    return QualityQueries.connect(endpoint(config, args.state_dir, "questdb_pg"))


def _rest_url(config: PipelineConfig, exchange: str) -> str:
    from marketstream.errors import ConfigError  # noqa: PLC0415

    settings = {str(name): value for name, value in config.exchanges.items()}.get(exchange)
    url = None if settings is None else settings.rest_url
    if url is None:
        raise ConfigError(
            f"exchanges.{exchange}.rest_url is not set: backfill needs the exchange's REST base URL"
        )
    return str(url)


def _instrument(
    hot: QualityQueries, exchange: str, symbol: str, since: int, until: int
) -> InstrumentQuality:
    from marketstream.quality.report import ReportInputs, collect  # noqa: PLC0415

    inputs = ReportInputs(min_completeness=0.0, expected=[(exchange, symbol)])
    return collect(hot, since, until, inputs, exchange=exchange, symbol=symbol).instruments[0]


def _fetch_and_write(
    config: PipelineConfig,
    args: argparse.Namespace,
    *,
    venue: Venue,
    symbol: str,
    rest_url: str,
    tasks: list[FetchTask],
) -> BackfillResult:
    from marketstream.quality import backfill as bf  # noqa: PLC0415
    from marketstream.quality.ratelimit import TokenBucket  # noqa: PLC0415
    from marketstream.quality.rest import RestClient, RestPolicy  # noqa: PLC0415
    from marketstream.tiers.questdb import QuestDBHttp  # noqa: PLC0415
    from marketstream.wiring import endpoint  # noqa: PLC0415

    settings = config.quality
    history = venue.trade_history
    assert history is not None  # check_backfill_exchange made sure
    bucket = TokenBucket.per_minute(
        history.weight_limit_per_minute * settings.backfill_weight_share
    )
    client = RestClient(
        venue.name,
        bucket,
        RestPolicy(
            max_retries=settings.backfill_max_retries,
            max_wait_s=settings.backfill_max_wait_s,
            timeout_s=settings.rest_timeout_s,
            weight_limit_per_minute=history.weight_limit_per_minute,
            used_weight_header=history.used_weight_header,
        ),
    )
    source = history.pages(symbol, rest_url, client, time.time_ns)
    sink = bf.QuestDBTradeSink(QuestDBHttp(endpoint(config, args.state_dir, "questdb_http")))
    try:
        result = bf.run_backfill(
            tasks, source, sink, max_future_skew_ns=config.ingest.max_future_skew_ms * 1_000_000
        )
        applied = sink.wait_applied()
    finally:
        sink.close()
    result.usage = {
        "requests": client.requests,
        "weight": client.weight,
        "retries": client.retries,
        "waited_s": round(bucket.waited_s, 3),
    }
    if not applied:
        print("marketstream: note: QuestDB has not applied the writes yet", file=sys.stderr)
    return result


def _print_backfill(
    result: BackfillResult,
    after: InstrumentQuality | None,
    *,
    exchange: str,
    symbol: str,
    since: int,
    until: int,
    output: str,
) -> None:
    from marketstream.query.hot_queries import format_ns  # noqa: PLC0415

    dry_run = after is None
    if output == "json":
        body: dict[str, Any] = {
            "exchange": exchange,
            "symbol": symbol,
            "since": format_ns(since),
            "until": format_ns(until),
            "dry_run": dry_run,
            "tasks": [
                {"kind": t.kind, "from": t.low, "to": t.high, "why": t.why} for t in result.tasks
            ],
        }
        if after is not None:
            body |= {
                "fetched": result.fetched,
                "already_stored": result.stored,
                "written": result.written,
                "rejected": result.rejected,
                "rejections": result.rejections,
                **result.usage,
                "after": _after_dict(after),
            }
        print_json(body)
        return
    print(
        f"{exchange} {symbol} {format_ns(since)} to {format_ns(until)}: "
        f"{len(result.tasks)} to fetch{' (dry run: nothing fetched)' if dry_run else ''}"
    )
    for task in result.tasks:
        print(f"  {task.describe()}")
    if after is None:
        return
    usage = result.usage
    print(
        f"fetched {result.fetched} trades in {usage['requests']:.0f} requests (weight "
        f"{usage['weight']:.0f}, {usage['retries']:.0f} retries, waited "
        f"{usage['waited_s']:.1f} s); wrote {result.written}, left out {result.stored} "
        f"already stored, rejected {result.rejected}"
    )
    for reason in result.rejections:
        print(f"rejected: {reason}", file=sys.stderr)
    summary = _after_dict(after)
    completeness = summary["completeness"]
    shown = "-" if completeness is None else f"{completeness:.2%}"
    ids = summary["ids_missing"]
    print(
        f"now: completeness {shown} ({after.minutes.with_trades} of {after.minutes.expected} "
        f"minutes)" + ("" if ids is None else f", {ids} trade ids missing")
    )


def _after_dict(after: InstrumentQuality) -> dict[str, Any]:
    gaps = None if after.ids is None else after.ids.gaps
    return {
        "completeness": after.completeness,
        "minutes_missing": after.minutes.missing_minutes,
        "ids_missing": None if after.ids is None else (0 if gaps is None else gaps.missing_ids),
    }
