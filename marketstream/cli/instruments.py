"""`marketstream instruments refresh|list|snapshot`: the instrument metadata of the exchanges
(`marketstream.instruments`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from marketstream.cli.common import Commands, add_state_dir, config_of, exchange_name
from marketstream.cli.output import print_csv, print_rows
from marketstream.errors import MarketStreamError

LIST_FORMATS = ("table", "json", "csv")


def add_commands(commands: Commands) -> None:
    group = commands.add_parser(
        "instruments", help="exchange instrument metadata: fetch it, list it, ship it"
    )
    actions = group.add_subparsers(title="actions", metavar="ACTION")

    refresh = actions.add_parser(
        "refresh", help="fetch the instrument lists now and write the cache"
    )
    refresh.add_argument(
        "--exchange",
        action="append",
        type=exchange_name,
        metavar="EX",
        help="only this exchange (repeatable; default: every enabled one)",
    )
    add_state_dir(refresh)
    refresh.set_defaults(handler=_cmd_refresh)

    listing = actions.add_parser(
        "list", help="the known instruments (the cache over the shipped snapshot)"
    )
    listing.add_argument("--exchange", type=exchange_name, metavar="EX", help="only this exchange")
    listing.add_argument("--symbol", metavar="S", help="only this symbol (normalized or native)")
    listing.add_argument("--format", choices=LIST_FORMATS, default="table")
    add_state_dir(listing)
    listing.set_defaults(handler=_cmd_list)

    snapshot = actions.add_parser(
        "snapshot",
        help="rebuild the shipped snapshot from recorded instrument answers (maintainers)",
    )
    snapshot.add_argument("files", nargs="+", type=Path, metavar="FILE", help="recordings")
    snapshot.add_argument(
        "--out", type=Path, metavar="FILE", help="default: the package's defaults/instruments.jsonl"
    )
    snapshot.add_argument(
        "--all",
        action="store_true",
        help="keep every instrument the answers list, not only the configured ones",
    )
    snapshot.set_defaults(handler=_cmd_snapshot)
    group.set_defaults(handler=lambda _: _usage(group))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _cmd_refresh(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - load on use

    from marketstream.instruments import fetch, store  # noqa: PLC0415

    config = config_of(args)
    chosen = fetch.targets(config, args.exchange)
    if not chosen:
        raise MarketStreamError(
            "nothing to fetch: no chosen exchange both lists instruments over REST and has "
            "exchanges.<name>.rest_url"
        )
    # Failures are reported below, once each: not also as log warnings.
    logging.getLogger("marketstream.instruments.fetch").setLevel(logging.ERROR)
    outcomes = asyncio.run(fetch.fetch_all(chosen, config.instruments))
    failed = [o for o in outcomes if not o.ok]
    if len(failed) == len(outcomes):
        reasons = "; ".join(f"{o.exchange}: {o.error}" for o in failed)
        raise MarketStreamError(f"every instrument fetch failed: {reasons}")
    path = store.cache_path(config, args.state_dir)
    fetched = {o.exchange for o in outcomes if o.ok}
    kept = (
        [i for i in store.read_instruments(path) if i.exchange not in fetched]
        if path.is_file()
        else []
    )
    written = store.write_instruments(path, [*kept, *(i for o in outcomes for i in o.instruments)])
    for outcome in outcomes:
        if outcome.ok:
            refused = f" ({outcome.refused} refused)" if outcome.refused else ""
            print(f"{outcome.exchange}: {len(outcome.instruments)} instruments{refused}")
    for outcome in failed:
        print(f"marketstream: warning: {outcome.exchange}: {outcome.error}", file=sys.stderr)
    print(f"wrote {written} instruments to {path}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from marketstream.instruments.snapshot import load_catalog  # noqa: PLC0415
    from marketstream.instruments.store import cache_path  # noqa: PLC0415

    config = config_of(args)
    catalog = load_catalog(cache_path(config, args.state_dir))
    rows = sorted(
        (
            i
            for i in catalog
            if (args.exchange is None or i.exchange == args.exchange)
            and (args.symbol is None or args.symbol in (i.symbol, i.native_symbol))
        ),
        key=lambda i: (i.exchange, i.symbol),
    )
    if not rows:  # said on stderr, so that a pipe reading the rows gets none
        wanted = " ".join(
            f"{k} {v}" for k, v in (("exchange", args.exchange), ("symbol", args.symbol)) if v
        )
        print(f"marketstream: no known instrument matches {wanted or 'anything'}", file=sys.stderr)
        return 0
    if args.format == "csv":
        print_csv(rows)
    else:
        print_rows(rows, args.format)
    return 0


def _cmd_snapshot(args: argparse.Namespace) -> int:
    from marketstream.instruments import snapshot, store  # noqa: PLC0415

    config = config_of(args)
    build = snapshot.build_snapshot(
        args.files, snapshot.configured_symbols(config), everything=args.all
    )
    out = args.out or snapshot.SHIPPED_SNAPSHOT
    written = store.write_instruments(out, build.instruments)
    counts: dict[str, int] = {}
    for instrument in build.instruments:
        counts[instrument.exchange] = counts.get(instrument.exchange, 0) + 1
    for exchange, count in sorted(counts.items()):
        print(f"{exchange}: {count} instruments")
    for exchange, missing in sorted(build.missing.items()):
        print(f"{exchange}: no recorded answer lists {', '.join(missing)}", file=sys.stderr)
    if build.unparsed:
        print(f"no instrument parser yet: {', '.join(build.unparsed)}", file=sys.stderr)
    print(f"wrote {written} instruments to {out}")
    return 0
