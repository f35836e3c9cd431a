"""Which UTC days are past a horizon: the unit of every move is one table's one day
(`tiers.days`).

A day moves once all of it is older than the horizon: with hot_days = 7, on 2026-11-21 the
newest day to leave QuestDB is 2026-11-13 (its last nanosecond is more than 7 days old).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta


def horizon_day(now_ns: int, days: int) -> date:
    """The first day that stays: every earlier day is wholly older than `days` days."""
    return (datetime.fromtimestamp(now_ns / 1e9, UTC) - timedelta(days=days)).date()


def due(days: Iterable[date], horizon: date) -> list[date]:
    """The days strictly before the horizon, oldest first."""
    return sorted(day for day in set(days) if day < horizon)
