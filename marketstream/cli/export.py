"""`marketstream export`: one exchange's data, read day by day from every tier, in a
backtesting tool's format (the work is in `marketstream.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from marketstream.cli.common import Commands, add_command, config_of

_TIME_HELP = "ISO-8601 (2025-11-20 or 2025-11-20T10:00:00Z; no offset means UTC) or epoch ns"


def add_commands(commands: Commands) -> None:
    export = add_command(
        commands,
        "export",
        _cmd_export,
        "export trades, quotes, books, candles, ... to NautilusTrader, Freqtrade, VectorBT or "
        "tardis.dev CSV",
        state_dir=True,
        description="Reads each UTC day from the hottest tier holding it (QuestDB, ClickHouse, "
        "Parquet) and writes it before reading the next, so memory stays bounded. Files go "
        "into --out only when the whole export succeeded; a manifest beside them says what "
        "each symbol and type came to, and which bars were built from trades.",
    )
    export.add_argument(
        "--to",
        required=True,
        metavar="FORMAT",
        help="nautilus (ParquetDataCatalog), freqtrade (its datadir, feather), vectorbt (wide "
        "OHLCV Parquet) or tardis-csv (tardis.dev's gzip CSV files)",
    )
    export.add_argument("--exchange", required=True, metavar="EX")
    export.add_argument(
        "--symbol", required=True, metavar="S", help="e.g. BTC-USDT, or several: BTC-USDT,ETH-USDT"
    )
    export.add_argument(
        "--type",
        metavar="T",
        help="trades, quotes, books, candles, funding, liquidations, open_interest, or several "
        "(comma-separated); default: the format's usual set (nautilus: trades,quotes,candles; "
        "freqtrade: candles,trades; vectorbt: candles; tardis-csv: trades,quotes,books)",
    )
    export.add_argument(
        "--interval", default="1m", metavar="I", help="candles: 1s, 1m (default), 5m, 1h or 1d"
    )
    export.add_argument("--start", required=True, metavar="T", help=_TIME_HELP)
    export.add_argument("--end", required=True, metavar="T", help=f"exclusive; {_TIME_HELP}")
    export.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output directory (freqtrade: its --datadir, user_data/data/<exchange>); "
        "files already there are never overwritten",
    )
    export.add_argument(
        "--no-progress", action="store_true", help="no progress bar (default: on a terminal)"
    )


def _cmd_export(args: argparse.Namespace) -> int:
    from marketstream import wiring  # noqa: PLC0415 - the tiers' clients: load on use
    from marketstream.export import ExportRequest, run_export  # noqa: PLC0415
    from marketstream.export.formats import writer_class  # noqa: PLC0415
    from marketstream.export.request import split_list  # noqa: PLC0415
    from marketstream.instruments.store import cache_path  # noqa: PLC0415
    from marketstream.query import hot_queries as hq  # noqa: PLC0415

    if args.type is None:
        types = writer_class(args.to, ()).DEFAULT_TYPES
    else:
        types = split_list(args.type, "--type")
    request = ExportRequest(
        format=args.to,
        exchange=args.exchange,
        symbols=split_list(args.symbol, "--symbol"),
        types=types,
        start_ns=hq.parse_time(args.start, "--start"),
        end_ns=hq.parse_time(args.end, "--end"),
        out=args.out,
        interval=args.interval,
    )
    writer_class(request.format, request.types)  # every input is checked before a tier is read
    config = config_of(args)
    with wiring.open_tiered(config, args.state_dir) as tiered:
        summary = run_export(
            request,
            tiered,
            instruments_cache=cache_path(config, args.state_dir),
            progress=False if args.no_progress else None,
        )
    for line in summary.lines():
        print(line)
    return 0
