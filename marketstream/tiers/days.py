"""UTC days: what every tier partitions by (QuestDB `PARTITION BY DAY`, ClickHouse's day
partitions, the cold `dt=` directories), so the unit the archiver moves and the cross-tier
reader reads."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

NS_PER_DAY: Final = 86_400 * 10**9
EPOCH: Final = date(1970, 1, 1)


def day_start_ns(day: date) -> int:
    return (day - EPOCH).days * NS_PER_DAY


def day_of_ns(ns: int) -> date:
    return EPOCH + timedelta(days=ns // NS_PER_DAY)


def days_between(start_ns: int, end_ns: int) -> list[date]:
    """Every UTC day that [start_ns, end_ns) touches, in order."""
    if end_ns <= start_ns:
        return []
    first, last = day_of_ns(start_ns), day_of_ns(end_ns - 1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
