"""The time range of a report or a backfill: `--since 24h|ISO|epoch-ns`, `--until ...`.

Pure: the current time arrives as an argument.
"""

from __future__ import annotations

import re
from typing import Final

from marketstream.query.hot_queries import NS_PER_S, QueryInputError, format_ns, parse_time

DURATION_UNITS: Final[dict[str, int]] = {
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "d": 86_400 * NS_PER_S,
}
_DURATION_RE: Final = re.compile(r"^(?P<amount>[0-9]{1,9})(?P<unit>[smhd])$")
_EXPECTED: Final = (
    "expected a duration back from now (90s, 30m, 24h, 7d), ISO-8601 such as "
    "2025-11-20T10:00:00Z, or epoch nanoseconds"
)


def parse_moment(text: str, name: str, now_ns: int) -> int:
    """A duration before now (`24h`), ISO-8601 or epoch nanoseconds, to int ns."""
    stripped = text.strip()
    duration = _DURATION_RE.match(stripped)
    if duration is not None:
        amount = int(duration["amount"]) * DURATION_UNITS[duration["unit"]]
        if amount == 0 or amount > now_ns:
            raise QueryInputError(f"{name} {text!r} is not a usable duration: {_EXPECTED}")
        return now_ns - amount
    try:
        return parse_time(stripped, name)
    except QueryInputError as exc:
        if " is not a time: " in str(exc):  # say that durations are welcome too
            raise QueryInputError(f"{name} {text!r} is not a time: {_EXPECTED}") from None
        raise


def parse_window(since: str, until: str | None, now_ns: int) -> tuple[int, int]:
    """[since, until) in ns; `until` defaults to now. QueryInputError names a bad value."""
    start = parse_moment(since, "--since", now_ns)
    end = now_ns if until is None else parse_moment(until, "--until", now_ns)
    if start >= end:
        raise QueryInputError(
            f"--since {format_ns(start)} is not before --until {format_ns(end)}: "
            "expected since < until"
        )
    return start, end
