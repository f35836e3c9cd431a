"""One day of one table, one tier down: copy, verify in the destination, record, drop.

The source is dropped only after the destination was read back and matched the expected rows
by a checksum over every column of every row (`row_checksum`), and only if the source still
holds exactly the rows that were copied: rows that arrived meanwhile, or a candle updated in
place (same count, new values), stay and move with the next run. Every step can be repeated:
the destination's day is replaced by the union of what it held and the source.

QuestDB first applies its WAL (see `tiers/questdb_partitions.py`): the export and the drop
gate then see every row committed before the move began. If the table took no transaction
between the export and the drop, its days are as exported; otherwise the days are read again
and compared, column by column. A write that lands between that last check and the drop
itself would still go with the partition; only a backfill writes days that old, and it should
not run with the archiver.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from marketstream.archiver.manifest import Manifest, ManifestEntry
from marketstream.archiver.merge import union_by_key
from marketstream.errors import MarketStreamError
from marketstream.schemas.arrow import arrow_schema, conform
from marketstream.schemas.checksum import row_checksum
from marketstream.schemas.columns import TableSpec
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.cold_parquet import decode, encode_partition
from marketstream.tiers.cold_store import ColdStore
from marketstream.tiers.days import NS_PER_DAY, day_of_ns
from marketstream.tiers.questdb_partitions import HotTier

HOT_TO_WARM: Final = "hot->warm"
WARM_TO_COLD: Final = "warm->cold"
# Crash tests: kill this process (SIGKILL, as `kill -9`) right after the first move reaches
# the named step (copied, verified or dropped). Never set in production.
FAILPOINT_ENV: Final = "MARKETSTREAM_ARCHIVE_FAILPOINT"


class VerificationError(MarketStreamError):
    """The destination does not hold what was copied: the source is kept."""


@dataclass(frozen=True, slots=True)
class MoveResult:
    hop: str
    table: str
    day: date
    rows: int  # rows the destination holds for the day after the move
    checksum: int
    seconds: float
    dropped: bool  # the source's day was dropped
    note: str = ""


class Mover:
    """Runs moves and writes their steps to the manifest."""

    def __init__(
        self,
        hot: HotTier,
        warm: WarmTier,
        cold: ColdStore,
        manifest: Manifest,
        *,
        run_id: str | None = None,
        failpoint: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wal_timeout_s: float = 300.0,
    ) -> None:
        self.hot, self.warm, self.cold, self.manifest = hot, warm, cold, manifest
        self.wal_timeout_s = wal_timeout_s
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.failpoint = failpoint if failpoint is not None else os.environ.get(FAILPOINT_ENV)
        self.clock = clock

    def hot_to_warm(
        self, spec: TableSpec, days: list[date], warm_days: set[date]
    ) -> list[MoveResult]:
        """Move a run of days (oldest first) in one export, one insert and one verification
        read; each day is still replaced, checked and dropped on its own."""
        started = time.perf_counter()
        applied = self.hot.wait_applied(spec, self.wal_timeout_s)
        source = self.hot.read_days(spec, days[0], days[-1])
        source_by_day = split_days(spec, source)
        copied = {day: row_checksum(spec, source_by_day.get(day, _empty(spec))) for day in days}
        existing_days = [day for day in days if day in warm_days]
        existing = (
            split_days(spec, self.warm.read_days(spec, existing_days)) if existing_days else {}
        )
        rows_by_day = {
            day: union_by_key(
                spec, source_by_day.get(day, _empty(spec)), existing.get(day, _empty(spec))
            )
            for day in days
        }
        expected = {day: row_checksum(spec, rows) for day, rows in rows_by_day.items()}
        self.warm.stage_days(spec, pa.concat_tables(rows_by_day.values()))
        self._steps(HOT_TO_WARM, spec, expected, "copied")
        staged = split_days(spec, self.warm.read_days(spec, days, stage=True))
        for day in days:
            found = row_checksum(spec, staged.get(day, _empty(spec)))
            _check(f"{HOT_TO_WARM} {spec.table} {day}: the staged day", found, expected[day])
        self.warm.commit_days(spec, days)
        counts = self.warm.day_counts(spec, days)
        for day in days:
            found = (counts.get(day, 0), expected[day][1])
            _check(f"{HOT_TO_WARM} {spec.table} {day}: the warm day", found, expected[day])
        self._steps(HOT_TO_WARM, spec, expected, "verified")
        changed = self._changed_in_hot(spec, days, applied, copied)
        droppable = [day for day in days if day not in changed]
        self.hot.drop_days(spec, droppable)
        self._steps(HOT_TO_WARM, spec, {d: expected[d] for d in droppable}, "dropped")
        share = (time.perf_counter() - started) / len(days)
        results = []
        for day in days:
            rows, checksum = expected[day]
            results.append(
                MoveResult(
                    HOT_TO_WARM,
                    spec.table,
                    day,
                    rows,
                    checksum,
                    share,
                    day in droppable,
                    changed.get(day, ""),
                )
            )
        return results

    def _changed_in_hot(
        self, spec: TableSpec, days: list[date], applied: int, copied: dict[date, tuple[int, int]]
    ) -> dict[date, str]:
        """The days whose rows in QuestDB are no longer those copied, with why: none if the
        table took no transaction since the export, else each day read again and compared
        over every column (same count with new values, a candle's update, counts too)."""
        now = self.hot.wait_applied(spec, self.wal_timeout_s)
        if now == applied:
            return {}
        again = split_days(spec, self.hot.read_days(spec, days[0], days[-1]))
        changed: dict[date, str] = {}
        for day in days:
            found = row_checksum(spec, again.get(day, _empty(spec)))
            if found != copied[day]:
                changed[day] = (
                    f"QuestDB's day changed during the move ({found[0]} rows now, "
                    f"{copied[day][0]} copied, checksum {found[1]:#x} against "
                    f"{copied[day][1]:#x}): kept, it moves with the next run"
                )
        return changed

    def warm_to_cold(self, spec: TableSpec, day: date) -> MoveResult:
        started = time.perf_counter()
        source = self.warm.read_day(spec, day)
        expected_by_exchange: dict[str, tuple[int, int]] = {}
        exchanges: list[str] = pc.unique(source.column("exchange")).to_pylist()  # type: ignore[assignment]
        for exchange in sorted(exchanges):
            part = source.filter(pc.equal(source.column("exchange"), pa.scalar(exchange)))
            existing = self.cold.read_partition(spec.table, exchange, day)
            older = conform(spec, decode(existing)) if existing else _empty(spec)
            rows = union_by_key(spec, part, older)
            expected = row_checksum(spec, rows)
            data = encode_partition(spec, rows, checksum=f"{expected[1]:016x}")
            self.cold.write_partition(spec.table, exchange, day, data)
            expected_by_exchange[exchange] = expected
        total = _total(expected_by_exchange.values())
        self._step(WARM_TO_COLD, spec, day, "copied", total)
        for exchange, expected in expected_by_exchange.items():
            stored = self.cold.read_partition(spec.table, exchange, day)
            found = row_checksum(spec, conform(spec, decode(stored))) if stored else (0, 0)
            _check(f"{WARM_TO_COLD} {spec.table} {day}: cold exchange={exchange}", found, expected)
        self._step(WARM_TO_COLD, spec, day, "verified", total)
        # Only the archiver writes the warm tables, under its lock: a count is enough here.
        still = self.warm.partitions(spec).get(day, 0)
        if still != source.num_rows:
            note = f"ClickHouse now holds {still} rows for the day, {source.num_rows} copied: kept"
            return _result(WARM_TO_COLD, spec, day, total, started, dropped=False, note=note)
        self.warm.drop_day(spec, day)
        self._step(WARM_TO_COLD, spec, day, "dropped", total)
        return _result(WARM_TO_COLD, spec, day, total, started, dropped=True)

    def _steps(
        self, hop: str, spec: TableSpec, checked: dict[date, tuple[int, int]], step: str
    ) -> None:
        for day, value in checked.items():
            self._step(hop, spec, day, step, value, crash=False)
        self._crash_at(step)

    def _crash_at(self, step: str) -> None:
        if self.failpoint == step:
            self.manifest.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def _step(
        self,
        hop: str,
        spec: TableSpec,
        day: date,
        step: str,
        checked: tuple[int, int],
        *,
        crash: bool = True,
    ) -> None:
        rows, checksum = checked
        entry = ManifestEntry(
            self.clock(), self.run_id, hop, spec.table, day, step, rows, checksum, ""
        )
        self.manifest.record(entry)
        if crash:
            self._crash_at(step)


def split_days(spec: TableSpec, table: pa.Table) -> dict[date, pa.Table]:
    """The rows of each UTC day in `table`."""
    if table.num_rows == 0:
        return {}
    day_numbers = pc.divide(pc.cast(table.column(spec.timestamp), pa.int64()), NS_PER_DAY)
    numbers: list[int] = pc.unique(day_numbers).to_pylist()  # type: ignore[assignment]
    return {
        day_of_ns(number * NS_PER_DAY): table.filter(pc.equal(day_numbers, pa.scalar(number)))
        for number in numbers
    }


def _empty(spec: TableSpec) -> pa.Table:
    return arrow_schema(spec).empty_table()


def _total(parts: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """Checksums are sums of row hashes, so the parts of a day add up to the day's."""
    rows = checksum = 0
    for part_rows, part_checksum in parts:
        rows += part_rows
        checksum = (checksum + part_checksum) % 2**64
    return rows, checksum


def _check(where: str, found: tuple[int, int], expected: tuple[int, int]) -> None:
    if found != expected:
        raise VerificationError(
            f"{where} holds {found[0]} rows (checksum {found[1]:#x}), "
            f"expected {expected[0]} rows (checksum {expected[1]:#x}); the source is kept"
        )


def _result(
    hop: str,
    spec: TableSpec,
    day: date,
    checked: tuple[int, int],
    started: float,
    *,
    dropped: bool,
    note: str = "",
) -> MoveResult:
    rows, checksum = checked
    seconds = time.perf_counter() - started
    return MoveResult(hop, spec.table, day, rows, checksum, seconds, dropped, note)
