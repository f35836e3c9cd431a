"""Which UTC days are past a horizon: the unit of every move is one table's one day.

A day moves once all of it is older than the horizon: with hot_days = 7, on 2026-11-21 the
newest day to leave QuestDB is 2026-11-13 (its last nanosecond is more than 7 days old).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Final

NS_PER_DAY: Final = 86_400 * 10**9
EPOCH: Final = date(1970, 1, 1)


def horizon_day(now_ns: int, days: int) -> date:
    """The first day that stays: every earlier day is wholly older than `days` days."""
    return (datetime.fromtimestamp(now_ns / 1e9, UTC) - timedelta(days=days)).date()


def due(days: Iterable[date], horizon: date) -> list[date]:
    """The days strictly before the horizon, oldest first."""
    return sorted(day for day in set(days) if day < horizon)


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
