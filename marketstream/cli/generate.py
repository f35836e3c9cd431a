"""`marketstream generate`: synthetic history into the hot tier (`marketstream.generate`), and
its command-line inputs, each refused in one line naming the value and what was expected."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date, timedelta
from typing import Final

from marketstream.cli.common import Commands, add_state_dir, config_of
from marketstream.cli.output import print_json
from marketstream.schemas.instruments import EXCHANGES

MAX_SEED: Final = 2**63 - 1


def add_commands(commands: Commands) -> None:
    generate = commands.add_parser(
        "generate",
        help="write synthetic trades, quotes, 1m candles (and, for -PERP symbols, liquidations "
        "and open interest) for past days to QuestDB",
    )
    generate.add_argument("--days", required=True, metavar="N", help="how many days, 1 or more")
    generate.add_argument(
        "--symbols", default="BTC-USDT,ETH-USDT", metavar="S,S", help="(default: %(default)s)"
    )
    generate.add_argument(
        "--exchanges", default=EXCHANGES[0], metavar="EX,EX", help="(default: %(default)s)"
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
    add_state_dir(generate)
    generate.set_defaults(handler=_cmd_generate)


def _cmd_generate(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from marketstream.generate import history as gh  # noqa: PLC0415 - numpy: load on use
    from marketstream.generate.hot_load import load_history  # noqa: PLC0415
    from marketstream.wiring import questdb_http  # noqa: PLC0415

    config = gh.HistoryConfig(  # every input is checked before QuestDB is asked
        exchanges=parse_names(args.exchanges, "--exchanges"),
        symbols=parse_names(args.symbols, "--symbols"),
        trades_per_day=parse_count(
            args.trades_per_day, "--trades-per-day", maximum=gh.MAX_TRADES_PER_DAY
        ),
        seed=parse_count(args.seed, "--seed", minimum=0),
        gaps=args.gaps,
        spikes=args.spikes,
    )
    end = None if args.end is None else parse_day(args.end, "--end")
    days = parse_count(args.days, "--days", maximum=gh.HORIZON_DAYS)
    start, end = day_range(days, end, datetime.now(UTC).date())
    summary = load_history(
        questdb_http(config_of(args), args.state_dir), gh.generate(config, start, end)
    )
    for line in summary.lines():
        print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print_json(summary.as_dict())
    return 0


def _refused(message: str) -> Exception:
    from marketstream.generate.history import HistoryInputError  # noqa: PLC0415 - numpy: on use

    return HistoryInputError(message)


def parse_count(text: str, option: str, *, minimum: int = 1, maximum: int = MAX_SEED) -> int:
    """An integer option from minimum to maximum."""
    stripped = text.strip()
    value = int(stripped) if stripped.isascii() and stripped.isdigit() else None
    if value is None or not minimum <= value <= maximum:
        raise _refused(
            f"{option} {text!r} is not valid: expected an integer from {minimum} to {maximum}"
        )
    return value


def parse_names(text: str, option: str) -> tuple[str, ...]:
    """A comma-separated list (`BTC-USDT,ETH-USDT`); the names are checked by HistoryConfig."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise _refused(f"{option} {text!r} has an empty name: expected names separated by commas")
    return names


def parse_day(text: str, option: str) -> date:
    """A `YYYY-MM-DD` day."""
    stripped = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
        try:
            return date.fromisoformat(stripped)
        except ValueError:
            pass
    raise _refused(f"{option} {text!r} is not a day: expected YYYY-MM-DD, e.g. 2025-01-31")


def day_range(days: int, end: date | None, today: date) -> tuple[date, date]:
    """The first and last day of `days` days ending at `end` (default: yesterday, UTC).

    Only whole past days are generated: `end` must be before today, and the first day
    no earlier than the generator's ANCHOR.
    """
    from marketstream.generate.history import ANCHOR  # noqa: PLC0415 - numpy: load on use

    last = end if end is not None else today - timedelta(days=1)
    if last >= today:
        raise _refused(
            f"--end {last} is not a past day: expected a day before today ({today}, UTC)"
        )
    if days < 1:
        raise _refused(f"--days {days} is not valid: expected 1 or more")
    first = last - timedelta(days=days - 1)
    if first < ANCHOR:
        most = (last - ANCHOR).days + 1
        raise _refused(
            f"--days {days} is too many: the first day {first} would be before {ANCHOR}; "
            f"expected at most {most} days ending {last}"
        )
    return first, last
