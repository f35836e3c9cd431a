"""The `marketstream` command: argument parsing and dispatch only; the work lives in the parts."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import yaml
from pydantic import ValidationError

from marketstream import __version__
from marketstream.cli.archive import add_archive_commands
from marketstream.cli.quality import add_quality_commands
from marketstream.config import (
    PipelineConfig,
    S3Config,
    WarmGatewayConfig,
    config_path,
    load_config,
    load_config_source,
    shown_config,
)
from marketstream.errors import ConfigError, MarketStreamError
from marketstream.logs import setup_logging

if TYPE_CHECKING:
    from contextlib import AbstractContextManager as ContextManager

    from marketstream.query.all_tiers import TieredQueries
    from marketstream.query.hot_queries import HotQueries
    from marketstream.services.state import ServicesStatus

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except MarketStreamError as exc:
        print(f"marketstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketstream",
        description="Tiered crypto market data pipeline: exchanges -> Redis Streams -> "
        "QuestDB (hot) -> ClickHouse (warm) -> Parquet (cold).",
    )
    parser.add_argument("--version", action="version", version=f"marketstream {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="pipeline configuration (default: $MARKETSTREAM_CONFIG, else ./configs/pipeline.yaml, "
        "else the defaults installed with marketstream)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="start the local services, ingest and the hot writer (Ctrl-C stops)"
    )
    _add_state_dir(run)
    run.set_defaults(handler=_cmd_run)

    demo = commands.add_parser(
        "demo", help="replay recordings through ingest and the hot writer; print a JSON summary"
    )
    demo.add_argument(
        "--recordings",
        type=Path,
        metavar="DIR",
        help="recordings to replay (default: $MARKETSTREAM_RECORDINGS, else the real "
        "recordings shipped in tests/data/recordings)",
    )
    demo.add_argument(
        "--only-recorded",
        action="store_true",
        help="replay only the recordings; by default each exchange with no recording "
        "(Kraken, OKX, Bybit) replays a session generated in its protocol",
    )
    demo.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".marketstream-demo"),
        metavar="DIR",
        help="the demo's own services, emptied first (default: .marketstream-demo)",
    )
    demo.add_argument(
        "--speed", type=float, metavar="X", help="replay at recorded speed times X (default: max)"
    )
    demo.add_argument(
        "--keep-services", action="store_true", help="leave the services running afterwards"
    )
    demo.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="S",
        help="once drained, keep /metrics served for S seconds (URLs on stderr)",
    )
    demo.set_defaults(handler=_cmd_demo)

    config = commands.add_parser("config", help="check or show the configuration")
    config_commands = config.add_subparsers(title="config commands", metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("file", nargs="?", help="file to check (default: the --config file)")
    check.set_defaults(handler=_cmd_config_check)
    show = config_commands.add_parser(
        "show", help="which file and environment overrides are in effect, and the result"
    )
    show.set_defaults(handler=_cmd_config_show)

    services = commands.add_parser(
        "services", help="local Redis, QuestDB, ClickHouse engine and cold storage (no Docker)"
    )
    service_commands = services.add_subparsers(title="services commands", metavar="ACTION")
    for name, help_text, handler in (
        ("start", "start every local service on free ports", _cmd_services_start),
        ("stop", "stop the services this state directory started", _cmd_services_stop),
        ("status", "print each endpoint and whether it answers", _cmd_services_status),
        ("install", "fetch the pinned QuestDB jar through Maven", _cmd_services_install),
    ):
        sub = service_commands.add_parser(name, help=help_text)
        _add_state_dir(sub)
        sub.set_defaults(handler=handler)
        if name == "status":
            sub.add_argument("--json", action="store_true", help="print JSON")
    warm = commands.add_parser(
        "warm-server", help="serve a ClickHouse engine directory over HTTP: the warm gateway"
    )
    warm.add_argument("--path", type=Path, required=True, metavar="DIR", help="engine directory")
    warm.add_argument(
        "--host", default="127.0.0.1", help="listen address (default: 127.0.0.1; no auth)"
    )
    warm.add_argument("--port", type=int, default=8123, metavar="N", help="(default: 8123)")
    limits = WarmGatewayConfig()
    warm.add_argument(
        "--cold", metavar="LOCATION", help="cold directory or s3://bucket/prefix that file() "
        "and s3() may read (default: none; `services start` passes endpoints.cold)",
    )  # fmt: skip
    warm.add_argument("--s3-endpoint", metavar="URL", help="S3 endpoint of an s3:// --cold")
    warm.add_argument("--s3-region", default=S3Config().region, metavar="NAME")
    warm.add_argument("--max-body-bytes", type=int, default=limits.max_body_bytes, metavar="N")
    warm.add_argument("--max-sessions", type=int, default=limits.max_sessions, metavar="N")
    warm.add_argument(
        "--max-session-timeout", type=float, default=limits.max_session_timeout_s, metavar="S"
    )
    warm.set_defaults(handler=_cmd_warm_server)
    _add_ingest_commands(commands)  # ingest, normalize
    _add_hot_writer_command(commands)  # write-hot
    _add_recording_commands(commands)  # replay-server, record: see the block at the end
    _add_query_commands(commands)  # query latest|trades|candles: see the block at the end
    add_archive_commands(commands, _add_state_dir)  # archive [status]: cli/archive.py
    add_quality_commands(commands, _add_state_dir)  # quality report, backfill: cli/quality.py
    _add_generate_command(commands)  # generate: see the block at the end
    return parser


def _add_ingest_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = commands.add_parser(
        "ingest", help="run the configured exchange connectors into Redis Streams"
    )
    ingest.add_argument(
        "--exchange",
        action="append",
        metavar="EX",
        help="run only this exchange (repeatable; default: every enabled one)",
    )
    ingest.add_argument(
        "--group", metavar="NAME", help="run only the exchanges of this group (exchanges.*.group)"
    )
    ingest.add_argument(
        "--metrics-port", type=int, metavar="N", help="/metrics and /healthz port (0: any free)"
    )
    _add_state_dir(ingest)
    ingest.set_defaults(handler=_cmd_ingest)

    normalize = commands.add_parser(
        "normalize", help="a recording to normalized JSON lines on stdout, counts on stderr"
    )
    normalize.add_argument("--exchange", required=True, metavar="EX", help="the recorded feed")
    normalize.add_argument("file", type=Path, help="a recording (JSON lines, see README)")
    normalize.set_defaults(handler=_cmd_normalize)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from marketstream.ingest.service import IngestService, plan_connections  # noqa: PLC0415
    from marketstream.services.state import require_endpoint  # noqa: PLC0415

    config = _config(args)
    plans = plan_connections(config, args.exchange, args.group)  # config errors come first
    service = IngestService(config, require_endpoint(config, args.state_dir, "redis"), plans=plans)
    setup_logging()

    _run_until_signal(lambda stop: service.run(stop, metrics_port=args.metrics_port))
    return 0


def _cmd_normalize(args: argparse.Namespace) -> int:
    from marketstream.ingest.normalize import normalize_recording  # noqa: PLC0415

    summary = normalize_recording(args.file, args.exchange, sys.stdout.buffer, _config(args).ingest)
    sys.stdout.buffer.flush()
    for line in summary.lines(args.exchange):
        print(line, file=sys.stderr)
    return 0


# --- write-hot: Redis Streams -> QuestDB ------------------------------------------------------


def _add_hot_writer_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    write_hot = commands.add_parser(
        "write-hot", help="write the Redis streams into QuestDB (consumer group hot-writer)"
    )
    write_hot.add_argument(
        "--consumer",
        metavar="NAME",
        help="consumer name in the group (default: host-pid); a restart under the same name "
        "resumes its own pending entries first",
    )
    write_hot.add_argument(
        "--metrics-port", type=int, metavar="N", help="/metrics and /healthz port (0: any free)"
    )
    _add_state_dir(write_hot)
    write_hot.set_defaults(handler=_cmd_write_hot)


def _cmd_write_hot(args: argparse.Namespace) -> int:
    from marketstream.services.state import require_endpoint  # noqa: PLC0415
    from marketstream.writers.hot_writer import HotWriter  # noqa: PLC0415

    config = _config(args)
    writer = HotWriter(
        config,
        require_endpoint(config, args.state_dir, "redis"),
        require_endpoint(config, args.state_dir, "questdb_http"),
        consumer=args.consumer,
    )
    setup_logging()

    _run_until_signal(lambda stop: writer.run(stop, metrics_port=args.metrics_port))
    return 0


def _run_until_signal(job: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a long-lived job on a fresh event loop until SIGINT or SIGTERM sets its stop event."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await job(stop)

    asyncio.run(run())


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where services keep data, logs and services.json (default: services.state_dir)",
    )


def _config(args: argparse.Namespace) -> PipelineConfig:
    return load_config(args.config)


def _cmd_config_check(args: argparse.Namespace) -> int:
    file = config_path(args.file or args.config, os.environ)
    config = load_config(file)
    enabled = config.enabled_exchanges()
    symbols = sum(len(ex.symbols) for ex in enabled.values())
    print(f"{file}: OK ({len(enabled)} exchanges enabled, {symbols} symbols)")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    config, source = load_config_source(args.config)
    print(f"# file: {source.file.absolute()} (chosen by {source.chosen_by})")
    if source.overrides:
        print("# environment overrides:")
        for key, variable in sorted(source.overrides.items()):
            print(f"#   {key} <- {variable}")
    else:
        print("# environment overrides: none")
    sys.stdout.write(yaml.safe_dump(shown_config(config), sort_keys=False))
    return 0


def _cmd_services_install(args: argparse.Namespace) -> int:
    from marketstream.services.questdb_server import install_questdb  # noqa: PLC0415 - heavy, load on use

    jar = install_questdb(_config(args).services)
    print(f"QuestDB jar ready: {jar}")
    return 0


def _cmd_services_start(args: argparse.Namespace) -> int:
    from marketstream.services.manager import start_services  # noqa: PLC0415 - heavy, load on use

    status = start_services(_config(args), args.state_dir)
    _print_status(status, as_json=False)
    return 0 if status.all_answering else 1


def _cmd_services_stop(args: argparse.Namespace) -> int:
    from marketstream.services.manager import stop_services  # noqa: PLC0415 - heavy, load on use

    for line in stop_services(_config(args), args.state_dir):
        print(line)
    return 0


def _cmd_services_status(args: argparse.Namespace) -> int:
    from marketstream.services.manager import services_status  # noqa: PLC0415 - heavy, load on use

    status = services_status(_config(args), args.state_dir)
    _print_status(status, as_json=args.json)
    return 0 if status.all_answering else 1


def _cmd_warm_server(args: argparse.Namespace) -> int:
    from marketstream.gateway.policy import SourcePolicy  # noqa: PLC0415
    from marketstream.gateway.server import GatewayOptions, serve  # noqa: PLC0415 - engine
    from marketstream.tiers.cold_store import ColdStore  # noqa: PLC0415

    setup_logging()
    try:  # validated as the configuration is
        limits = WarmGatewayConfig(
            max_body_bytes=args.max_body_bytes,
            max_sessions=args.max_sessions,
            max_session_timeout_s=args.max_session_timeout,
        )
        s3 = S3Config(endpoint_url=args.s3_endpoint, region=args.s3_region)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"warm-server: {where}: {first['msg']}") from None
    store = ColdStore.from_location(args.cold, s3) if args.cold else None
    options = GatewayOptions(
        max_body_bytes=limits.max_body_bytes,
        max_sessions=limits.max_sessions,
        max_session_timeout_s=limits.max_session_timeout_s,
        policy=SourcePolicy.for_store(store),
    )
    serve(args.path, host=args.host, port=args.port, options=options)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from marketstream.ingest.service import plan_connections  # noqa: PLC0415
    from marketstream.run.pipeline import Pipeline, PipelineEndpoints  # noqa: PLC0415
    from marketstream.services.manager import start_services  # noqa: PLC0415
    from marketstream.services.state import require_endpoint  # noqa: PLC0415

    config = _config(args)
    plans = plan_connections(config)  # configuration errors before anything starts
    status = start_services(config, args.state_dir)
    _print_status(status, as_json=False)
    if not status.all_answering:
        return 1
    endpoints = PipelineEndpoints(
        redis=require_endpoint(config, args.state_dir, "redis"),
        questdb_http=require_endpoint(config, args.state_dir, "questdb_http"),
    )
    pipeline = Pipeline(config, endpoints, plans=plans)
    setup_logging()
    print("pipeline running: ingest -> Redis Streams -> QuestDB; Ctrl-C stops it", flush=True)

    _run_until_signal(pipeline.run)
    print("pipeline stopped; services still run: `marketstream services stop` ends them")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from marketstream.ingest.recording import default_recordings  # noqa: PLC0415
    from marketstream.run.demo import prepare_state, run_demo  # noqa: PLC0415
    from marketstream.services.manager import stop_services  # noqa: PLC0415

    config = _config(args)
    recordings = args.recordings or default_recordings()
    setup_logging()
    prepare_state(config, args.state_dir)
    try:
        summary = asyncio.run(
            run_demo(
                config,
                recordings,
                args.state_dir,
                speed=args.speed,
                linger_s=args.linger,
                generate_missing=not args.only_recorded,
            )
        )
    finally:
        if not args.keep_services:
            stop_services(config, args.state_dir)
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    if args.keep_services:
        print(
            f"services kept running in {args.state_dir}: try "
            f"`marketstream query latest --state-dir {args.state_dir}`",
            file=sys.stderr,
        )
    return 0


def _print_status(status: ServicesStatus, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(status.as_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return
    for line in status.lines():
        print(line)


# --- recordings: replay-server and record ------------------------------------------------


def _add_recording_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay-server", help="serve a recording over a local WebSocket, as the exchange would"
    )
    replay.add_argument("--recording", required=True, type=Path, metavar="FILE")
    replay.add_argument("--host", default="127.0.0.1", help="address to listen on")
    replay.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=_positive_float, default=1.0, help="recorded gaps divided by X"
    )
    pace.add_argument("--max", action="store_true", help="send as fast as clients read")
    replay.add_argument(
        "--drop-every", type=_positive_int, metavar="N", help="close each connection after N frames"
    )
    replay.set_defaults(handler=_cmd_replay_server)

    record = commands.add_parser("record", help="capture an exchange feed into a recording")
    record.add_argument("--exchange", required=True, metavar="EX")
    record.add_argument("--out", required=True, type=Path, metavar="FILE", help="appended to")
    record.add_argument("--url", help="WebSocket URL (default: the config's; no REST then)")
    record.add_argument("--rest-url", metavar="URL", help="REST base for book snapshots")
    record.add_argument("--symbols", nargs="+", default=[], metavar="S", help="e.g. BTC-USDT")
    record.add_argument("--channels", nargs="+", default=[], metavar="C", help="e.g. trades")
    record.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="then stop")
    record.add_argument("--max-frames", type=_positive_int, metavar="N", help="then stop")
    record.set_defaults(handler=_cmd_record)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _cmd_replay_server(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - load on use

    from marketstream.ingest.replay import ReplayServer, serve_until_signal  # noqa: PLC0415

    server = ReplayServer(
        args.recording,
        host=args.host,
        port=args.port,
        speed=args.speed,
        max_speed=args.max,
        drop_every=args.drop_every,
    )
    setup_logging()
    asyncio.run(serve_until_signal(server, lambda line: print(line, flush=True)))
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from marketstream.ingest.recorder import record_until_signal, resolve_target  # noqa: PLC0415

    target = resolve_target(
        args.exchange,
        url=args.url,
        rest_url=args.rest_url,
        symbols=args.symbols,
        channels=args.channels,
        load_config=lambda: _config(args),
    )
    setup_logging()
    stats = record_until_signal(
        target, args.out, duration_s=args.duration, max_frames=args.max_frames
    )
    print(
        f"recorded {stats.frames} frames and {stats.snapshots} snapshots from {target.url} "
        f"to {args.out}"
    )
    return 0


# --- query: the hot tier (QuestDB over PG wire) --------------------------------------------


def _add_query_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    query = commands.add_parser(
        "query", help="latest prices, trades and candles from the hot tier (QuestDB)"
    )
    what = query.add_subparsers(title="query commands", metavar="WHAT")
    latest = what.add_parser("latest", help="the latest price of each instrument")
    latest.add_argument("--exchange", metavar="EX", help="only this exchange")
    latest.add_argument("--symbol", metavar="S", help="only this symbol, e.g. BTC-USDT")
    latest.set_defaults(handler=_cmd_query_latest)

    trades = what.add_parser("trades", help="trades with start <= ts < end, in time order")
    candles = what.add_parser(
        "candles", help="OHLCV candles built from trades, for the bars opening in [start, end)"
    )
    for sub in (trades, candles):
        sub.add_argument("--exchange", required=True, metavar="EX")
        sub.add_argument("--symbol", required=True, metavar="S", help="e.g. BTC-USDT")
        sub.add_argument("--start", required=True, metavar="T", help=_QUERY_TIME_HELP)
        sub.add_argument("--end", required=True, metavar="T", help="exclusive; as --start")
    trades.add_argument(
        "--limit", default="10000", metavar="N", help="at most N trades, the earliest"
    )
    trades.set_defaults(handler=_cmd_query_trades)
    for sub in (trades, candles):
        sub.add_argument(
            "--tier",
            default="auto",
            metavar="T",
            help="all (QuestDB, ClickHouse and Parquet, stitched by day), hot (QuestDB), or "
            "auto (the default: all where ClickHouse and cold storage are known, else hot)",
        )
    candles.add_argument(
        "--interval", required=True, metavar="I", help="1s, 1m, 5m, 1h or 1d (UTC calendar)"
    )
    candles.set_defaults(handler=_cmd_query_candles)
    for sub in (latest, trades, candles):
        sub.add_argument(
            "--format",
            default="json",
            metavar="F",
            help="json (one object per line, as `normalize` prints) or table (aligned columns)",
        )
        _add_state_dir(sub)


_QUERY_TIME_HELP = "ISO-8601 (2025-11-20T10:00:00Z; no offset means UTC) or epoch nanoseconds"
_QUERY_FORMATS = ("json", "table")
_TIMESTAMP_FIELDS = frozenset({"ts", "recv_ts", "next_ts"})


def _query_format(text: str) -> str:
    from marketstream.query.hot_queries import QueryInputError  # noqa: PLC0415

    if text not in _QUERY_FORMATS:
        raise QueryInputError(f"--format {text!r} is not known: expected json or table")
    return text


def _questdb_pg(args: argparse.Namespace) -> str:
    from marketstream.services.state import require_endpoint  # noqa: PLC0415

    return require_endpoint(_config(args), args.state_dir, "questdb_pg")


def _reader(args: argparse.Namespace) -> ContextManager[HotQueries | TieredQueries]:
    """QuestDB, ClickHouse and Parquet stitched by day (`all`), or QuestDB alone (`hot`);
    `auto` is `all` where the warm and cold tiers are known, else `hot` with a note."""
    from marketstream.errors import ServiceError  # noqa: PLC0415
    from marketstream.query import hot_queries as hq  # noqa: PLC0415
    from marketstream.query.all_tiers import open_tiered  # noqa: PLC0415
    from marketstream.services.state import require_endpoint  # noqa: PLC0415

    if args.tier not in ("auto", "all", "hot"):
        raise hq.QueryInputError(f"--tier {args.tier!r} is not known: expected auto, all or hot")
    config = _config(args)
    if args.tier == "auto":
        try:
            for name in ("clickhouse", "cold"):
                require_endpoint(config, args.state_dir, name)
        except ServiceError as exc:
            print(f"marketstream: note: the hot tier only ({exc})", file=sys.stderr)
            args.tier = "hot"
    if args.tier == "hot":
        return hq.HotQueries.connect(_questdb_pg(args))
    return open_tiered(config, args.state_dir)


def _cmd_query_latest(args: argparse.Namespace) -> int:
    from marketstream.query import hot_queries as hq  # noqa: PLC0415 - psycopg: load on use

    output = _query_format(args.format)  # every input is checked before QuestDB is asked
    exchange = None if args.exchange is None else hq.check_exchange(args.exchange)
    symbol = None if args.symbol is None else hq.check_symbol(args.symbol)
    with hq.HotQueries.connect(_questdb_pg(args)) as hot:
        prices = hot.latest_prices(exchange, symbol)
    _print_query_rows(prices, output)
    return 0


def _cmd_query_trades(args: argparse.Namespace) -> int:
    from marketstream.query import hot_queries as hq  # noqa: PLC0415 - psycopg: load on use

    output = _query_format(args.format)
    exchange, symbol = hq.check_exchange(args.exchange), hq.check_symbol(args.symbol)
    start, end = hq.check_range(
        hq.parse_time(args.start, "--start"), hq.parse_time(args.end, "--end")
    )
    limit = hq.parse_limit(args.limit)
    with _reader(args) as reader:
        trades = reader.trades(exchange, symbol, start, end, limit=limit)
    _print_query_rows(trades, output)
    if len(trades) == limit:
        print(
            f"marketstream: note: the first {limit} trades only (--limit); "
            "narrow the range or raise --limit for more",
            file=sys.stderr,
        )
    return 0


def _cmd_query_candles(args: argparse.Namespace) -> int:
    from marketstream.query import hot_queries as hq  # noqa: PLC0415 - psycopg: load on use

    output = _query_format(args.format)
    exchange, symbol = hq.check_exchange(args.exchange), hq.check_symbol(args.symbol)
    hq.check_interval(args.interval)
    start, end = hq.check_range(
        hq.parse_time(args.start, "--start"), hq.parse_time(args.end, "--end")
    )
    with _reader(args) as reader:
        candles = reader.ohlcv(exchange, symbol, args.interval, start, end)
    _print_query_rows(candles, output)
    return 0


def _print_query_rows(rows: Sequence[object], output: str) -> None:
    """JSON lines (records as `normalize` prints them), or a table with ISO-8601 timestamps."""
    import dataclasses  # noqa: PLC0415

    if output == "json":
        sys.stdout.buffer.write(b"".join(_query_json(row) + b"\n" for row in rows))
        sys.stdout.buffer.flush()
        return
    if not rows or not dataclasses.is_dataclass(rows[0]):
        return
    header = [field.name for field in dataclasses.fields(rows[0])]
    cells = [[_query_cell(name, getattr(row, name)) for name in header] for row in rows]
    numeric = [
        name not in _TIMESTAMP_FIELDS
        and all(isinstance(getattr(row, name), int | float | None) for row in rows)
        for name in header
    ]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(header)]
    for line in (header, *cells):
        print(
            "  ".join(
                text.rjust(width) if right else text.ljust(width)
                for text, width, right in zip(line, widths, numeric, strict=True)
            ).rstrip()
        )


def _query_json(row: object) -> bytes:
    from marketstream.schemas.codec import encode_record  # noqa: PLC0415
    from marketstream.schemas.records import RECORD_CLASSES  # noqa: PLC0415

    return encode_record(row) if isinstance(row, RECORD_CLASSES) else orjson.dumps(row)


def _query_cell(name: str, value: object) -> str:
    from marketstream.query.hot_queries import format_ns  # noqa: PLC0415

    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if name in _TIMESTAMP_FIELDS and isinstance(value, int):
        return format_ns(value)
    return str(value)


# --- generate: synthetic history into the hot tier -----------------------------------------


def _add_generate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    generate = commands.add_parser(
        "generate", help="write synthetic trades, quotes and 1m candles for past days to QuestDB"
    )
    generate.add_argument("--days", required=True, metavar="N", help="how many days, 1 or more")
    generate.add_argument(
        "--symbols", default="BTC-USDT,ETH-USDT", metavar="S,S", help="(default: %(default)s)"
    )
    generate.add_argument(
        "--exchanges", default="binance", metavar="EX,EX", help="(default: %(default)s)"
    )
    generate.add_argument(
        "--end", metavar="YYYY-MM-DD", help="the newest day generated (default: yesterday, UTC)"
    )
    generate.add_argument(
        "--trades-per-day", default="2000", metavar="N", help="per exchange and symbol, on average"
    )
    generate.add_argument("--seed", default="0", metavar="S", help="same seed, same rows")
    generate.add_argument("--gaps", action="store_true", help="leave out minutes (feed outages)")
    generate.add_argument("--spikes", action="store_true", help="add sudden moves of 3-12%%")
    generate.add_argument(
        "--json", action="store_true", help="print the truth: rows and key checksum per day"
    )
    _add_state_dir(generate)
    generate.set_defaults(handler=_cmd_generate)


def _cmd_generate(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from marketstream.generate import history as gh  # noqa: PLC0415 - numpy: load on use
    from marketstream.generate.hot_load import load_history  # noqa: PLC0415
    from marketstream.services.state import require_endpoint  # noqa: PLC0415
    from marketstream.tiers.questdb import QuestDBHttp  # noqa: PLC0415

    config = gh.HistoryConfig(  # every input is checked before QuestDB is asked
        exchanges=gh.parse_names(args.exchanges, "--exchanges"),
        symbols=gh.parse_names(args.symbols, "--symbols"),
        trades_per_day=gh.parse_count(
            args.trades_per_day, "--trades-per-day", maximum=gh.MAX_TRADES_PER_DAY
        ),
        seed=gh.parse_count(args.seed, "--seed", minimum=0),
        gaps=args.gaps,
        spikes=args.spikes,
    )
    end = None if args.end is None else gh.parse_day(args.end, "--end")
    days = gh.parse_count(args.days, "--days", maximum=gh.HORIZON_DAYS)
    start, end = gh.day_range(days, end, datetime.now(UTC).date())
    http = QuestDBHttp(require_endpoint(_config(args), args.state_dir, "questdb_http"))
    summary = load_history(http, gh.generate(config, start, end))
    for line in summary.lines():
        print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        sys.stdout.write(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    return 0
