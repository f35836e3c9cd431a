"""`marketstream query latest|trades|candles|liquidations|open-interest|prices|instruments`: the
hot tier, or every tier stitched by day (`marketstream.query`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Final

from marketstream.cli.common import Commands, add_state_dir, config_of
from marketstream.cli.output import ROW_FORMATS, print_rows
from marketstream.schemas.instruments import SOURCES
from marketstream.schemas.records import Liquidation, OpenInterest, Price, Record, Trade

if TYPE_CHECKING:
    from contextlib import AbstractContextManager as ContextManager

    from marketstream.query.all_tiers import TieredQueries
    from marketstream.query.hot_queries import HotQueries

# What each range command reads, by the plural its messages use.
_RANGE_RECORDS: Final[dict[str, type[Record]]] = {
    "trades": Trade,
    "liquidations": Liquidation,
    "open interest readings": OpenInterest,
    "prices": Price,
}
_QUERY_TIME_HELP = "ISO-8601 (2025-11-20T10:00:00Z; no offset means UTC) or epoch nanoseconds"
_EXCHANGE_HELP = f"an exchange, or a polled price source ({', '.join(SOURCES)})"


def add_commands(commands: Commands) -> None:
    query = commands.add_parser(
        "query",
        help="latest prices, trades, candles, liquidations, open interest, polled source prices "
        "and instruments from the hot tier (QuestDB) or every tier",
    )
    what = query.add_subparsers(title="query commands", metavar="WHAT")
    latest = what.add_parser("latest", help="the latest price of each instrument")
    latest.add_argument("--exchange", metavar="EX", help="only this exchange or source")
    latest.add_argument("--symbol", metavar="S", help="only this symbol, e.g. BTC-USDT")
    latest.set_defaults(handler=_cmd_query_latest)

    trades = what.add_parser("trades", help="trades with start <= ts < end, in time order")
    liquidations = what.add_parser(
        "liquidations", help="liquidations with start <= ts < end, in time order"
    )
    open_interest = what.add_parser(
        "open-interest",
        help="open interest (base units; value in quote where sent) with start <= ts < end",
    )
    prices = what.add_parser(
        "prices",
        help="a polled source's prices (USD) with start <= ts < end, one per tick, in time order",
    )
    candles = what.add_parser(
        "candles", help="OHLCV candles built from trades, for the bars opening in [start, end)"
    )
    ranges = {
        "trades": trades,
        "liquidations": liquidations,
        "open interest readings": open_interest,
        "prices": prices,
    }
    for sub in (*ranges.values(), candles):
        sub.add_argument("--exchange", required=True, metavar="EX", help=_EXCHANGE_HELP)
        example = "SOL-USD" if sub is prices else "BTC-USDT-PERP"
        sub.add_argument("--symbol", required=True, metavar="S", help=f"e.g. {example}")
        sub.add_argument("--start", required=True, metavar="T", help=_QUERY_TIME_HELP)
        sub.add_argument("--end", required=True, metavar="T", help="exclusive; as --start")
    for rows, sub in ranges.items():
        sub.add_argument(
            "--limit", default="10000", metavar="N", help=f"at most N {rows}, the earliest"
        )
        sub.set_defaults(handler=_cmd_query_range, rows=rows)
    instruments = what.add_parser(
        "instruments", help="the newest metadata of every instrument, by exchange and symbol"
    )
    instruments.add_argument("--exchange", metavar="EX", help="only this exchange")
    instruments.set_defaults(handler=_cmd_query_instruments)
    for sub in (*ranges.values(), candles, instruments):
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
    for sub in (latest, *ranges.values(), candles, instruments):
        sub.add_argument(
            "--format",
            default="json",
            metavar="F",
            help="json (one object per line, as `normalize` prints) or table (aligned columns)",
        )
        add_state_dir(sub)


def _query_format(text: str) -> str:
    from marketstream.query.hot_queries import QueryInputError  # noqa: PLC0415

    if text not in ROW_FORMATS:
        raise QueryInputError(f"--format {text!r} is not known: expected json or table")
    return text


def _reader(args: argparse.Namespace) -> ContextManager[HotQueries | TieredQueries]:
    """QuestDB, ClickHouse and Parquet stitched by day (`all`), or QuestDB alone (`hot`);
    `auto` is `all` where the warm and cold tiers are known, else `hot` with a note."""
    from marketstream import wiring  # noqa: PLC0415
    from marketstream.errors import ServiceError  # noqa: PLC0415
    from marketstream.query import hot_queries as hq  # noqa: PLC0415

    if args.tier not in ("auto", "all", "hot"):
        raise hq.QueryInputError(f"--tier {args.tier!r} is not known: expected auto, all or hot")
    config = config_of(args)
    if args.tier == "auto":
        try:
            for name in ("clickhouse", "cold"):
                wiring.endpoint(config, args.state_dir, name)
        except ServiceError as exc:
            print(f"marketstream: note: the hot tier only ({exc})", file=sys.stderr)
            args.tier = "hot"
    if args.tier == "hot":
        return wiring.hot_queries(config, args.state_dir)
    return wiring.open_tiered(config, args.state_dir)


def _cmd_query_latest(args: argparse.Namespace) -> int:
    from marketstream.query import hot_queries as hq  # noqa: PLC0415 - psycopg: load on use
    from marketstream.wiring import hot_queries  # noqa: PLC0415

    output = _query_format(args.format)  # every input is checked before QuestDB is asked
    exchange = None if args.exchange is None else hq.check_exchange(args.exchange)
    symbol = None if args.symbol is None else hq.check_symbol(args.symbol)
    with hot_queries(config_of(args), args.state_dir) as hot:
        prices = hot.latest_prices(exchange, symbol)
    print_rows(prices, output)
    return 0


def _cmd_query_range(args: argparse.Namespace) -> int:
    """trades, liquidations, open interest or prices (`args.rows`) of one instrument and
    range."""
    from marketstream.query import hot_queries as hq  # noqa: PLC0415 - psycopg: load on use

    output = _query_format(args.format)
    exchange, symbol = hq.check_exchange(args.exchange), hq.check_symbol(args.symbol)
    start, end = hq.check_range(
        hq.parse_time(args.start, "--start"), hq.parse_time(args.end, "--end")
    )
    limit = hq.parse_limit(args.limit)
    query = hq.RangeQuery(_RANGE_RECORDS[args.rows], exchange, symbol, start, end, limit)
    with _reader(args) as reader:
        rows = reader.records(query)
    print_rows(rows, output)
    if len(rows) == limit:
        print(
            f"marketstream: note: the first {limit} {args.rows} only (--limit); "
            "narrow the range or raise --limit for more",
            file=sys.stderr,
        )
    return 0


def _cmd_query_instruments(args: argparse.Namespace) -> int:
    from marketstream.query import hot_queries as hq  # noqa: PLC0415 - psycopg: load on use

    output = _query_format(args.format)
    exchange = None if args.exchange is None else hq.check_exchange(args.exchange)
    with _reader(args) as reader:
        instruments = reader.instruments(exchange)
    print_rows(instruments, output)
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
    print_rows(candles, output)
    return 0
