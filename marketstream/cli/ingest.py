"""`marketstream ingest` and `marketstream normalize`: exchange feeds into records
(`marketstream.ingest`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from marketstream.cli.common import Commands, add_daemon, config_of
from marketstream.errors import ConfigError
from marketstream.gc_settings import apply_gc_settings
from marketstream.logs import setup_logging
from marketstream.signals import run_until_signal


def add_commands(commands: Commands) -> None:
    ingest = add_daemon(
        commands,
        "ingest",
        _cmd_ingest,
        "run the configured exchange connectors into Redis Streams",
    )
    ingest.add_argument(
        "--exchange",
        action="append",
        metavar="EX",
        help="run only this exchange (repeatable; default: every enabled one)",
    )
    ingest.add_argument(
        "--source",
        action="append",
        metavar="NAME",
        help="run only this polled source (repeatable; default: every enabled one, unless "
        "--exchange is given)",
    )
    ingest.add_argument(
        "--group",
        metavar="NAME",
        help="run only the exchanges and sources of this group (*.group in the config)",
    )

    normalize = commands.add_parser(
        "normalize", help="a recording to normalized JSON lines on stdout, counts on stderr"
    )
    normalize.add_argument("--exchange", required=True, metavar="EX", help="the recorded feed")
    normalize.add_argument("file", type=Path, help="a recording (JSON lines, see README)")
    normalize.set_defaults(handler=_cmd_normalize)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from marketstream.ingest.polling.plan import plan_sources  # noqa: PLC0415
    from marketstream.ingest.service import IngestService, plan_connections  # noqa: PLC0415
    from marketstream.instruments.store import cache_path  # noqa: PLC0415
    from marketstream.wiring import endpoint  # noqa: PLC0415

    config = config_of(args)
    # Config errors come first. `--exchange` alone runs no source, `--source` alone no exchange.
    sources = (
        [] if args.exchange and not args.source
        else plan_sources(config, os.environ, args.source, args.group)
    )  # fmt: skip
    sources_only = (args.source and not args.exchange) or (
        args.group and sources and not config.enabled_exchanges(args.group)
    )
    plans = [] if sources_only else plan_connections(config, args.exchange, args.group)
    if not plans and not sources:
        raise ConfigError("nothing to ingest: no enabled exchange or source (of this group)")
    service = IngestService(
        config,
        endpoint(config, args.state_dir, "redis"),
        plans=plans,
        instrument_cache=cache_path(config, args.state_dir),
        sources=sources,
    )
    setup_logging()
    apply_gc_settings(config.runtime)
    run_until_signal(lambda stop: service.run(stop, metrics_port=args.metrics_port))
    return 0


def _cmd_normalize(args: argparse.Namespace) -> int:
    from marketstream.ingest.normalize import normalize_recording  # noqa: PLC0415

    config = config_of(args)
    configured = config.exchanges.get(args.exchange)
    apply_gc_settings(config.runtime)  # a collection every 700 records cost 7% of the run
    summary = normalize_recording(
        args.file,
        args.exchange,
        sys.stdout.buffer,
        config.ingest,
        symbols=configured.symbols if configured is not None else (),
    )
    sys.stdout.buffer.flush()
    for line in summary.lines(args.exchange):
        print(line, file=sys.stderr)
    return 0
