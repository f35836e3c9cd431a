"""The `marketstream` command: argument parsing and dispatch only; the work lives in the parts.

Each command group is a module here with an `add_commands(commands)` that adds its
subcommands; `build_parser` asks each in the order `--help` lists them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from marketstream import __version__
from marketstream.cli import (
    archive,
    config,
    export,
    generate,
    hot,
    ingest,
    instruments,
    quality,
    query,
    recordings,
    run,
    serve,
    services,
    warm,
)
from marketstream.cli.common import Handler
from marketstream.errors import MarketStreamError

COMMAND_GROUPS = (
    run,  # run, demo
    config,  # config check|show
    services,  # services start|stop|status|install
    warm,  # warm-server
    ingest,  # ingest, normalize
    instruments,  # instruments refresh|list|snapshot
    hot,  # write-hot
    recordings,  # replay-server, record
    query,  # query latest|trades|candles
    serve,  # serve (HTTP and WebSocket API)
    archive,  # archive [status]
    export,  # export --to nautilus|freqtrade|vectorbt|tardis-csv
    quality,  # quality report, backfill
    generate,  # generate
)


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
    except BrokenPipeError:
        # the reader left (`marketstream ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


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
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser
