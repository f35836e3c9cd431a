"""The archiver's runs: plan the due moves, make them, report; once or every night.

Hot → warm runs first, so a day past both horizons (generated history, or an archiver that
was off for a year) goes all the way to cold in one run. A failed move, whatever it raised,
is logged, counted and reported (the run's report, `/healthz`, `archive status`), its source
kept for the next run; the other moves go on. The nightly loop outlives a run that raises:
it logs it and waits for the next schedule.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial

from marketstream.archiver.days import due, horizon_day
from marketstream.archiver.health import ArchiverHealth, Failure
from marketstream.archiver.manifest import Manifest, ManifestEntry
from marketstream.archiver.metrics import ArchiveMetrics
from marketstream.archiver.moves import HOT_TO_WARM, WARM_TO_COLD, Mover, MoveResult
from marketstream.config import PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.event_loop import wait_until_set
from marketstream.schemas.columns import SPECS, TRADES, TableSpec
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.clickhouse_views import create_all_views_sql
from marketstream.tiers.cold_store import ColdStore
from marketstream.tiers.questdb_partitions import HotTier

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlannedMove:
    hop: str
    table: str
    day: date
    rows: int  # in the source when planned


@dataclass(slots=True)
class RunReport:
    planned: list[PlannedMove] = field(default_factory=list)
    moved: list[MoveResult] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)  # kept at their source
    seconds: float = 0.0

    def rows_per_s(self, hop: str) -> float:
        moved = [m for m in self.moved if m.hop == hop]
        seconds = sum(m.seconds for m in moved)
        return sum(m.rows for m in moved) / seconds if seconds else 0.0


@dataclass(frozen=True, slots=True)
class TierTable:
    """One table in one tier: its days, and rows (hot, warm) or bytes (cold, from a listing:
    counting rows would read every file's footer)."""

    tier: str
    table: str
    days: int
    first: date | None
    last: date | None
    rows: int | None
    bytes: int | None = None


class Archiver:
    def __init__(
        self,
        config: PipelineConfig,
        hot: HotTier,
        warm: WarmTier,
        cold: ColdStore,
        *,
        metrics: ArchiveMetrics | None = None,
        health: ArchiverHealth | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.hot, self.warm, self.cold = hot, warm, cold
        self.manifest = Manifest(warm.client, warm.database)
        self.metrics = metrics if metrics is not None else ArchiveMetrics()
        self.health = health if health is not None else ArchiverHealth()
        self.now_ns = now_ns

    def prepare(self) -> None:
        """Create the warm tables, their staging twins, the manifest and the `*_all` views
        (warm table UNION ALL the cold files, for SQL users), if missing."""
        self.warm.ensure_tables()
        self.manifest.ensure_table()
        for sql in create_all_views_sql(self.cold, self.warm.database):
            self.warm.client.command(sql)

    def plan(self) -> list[PlannedMove]:
        """The moves a run would make now; a day due for both hops is listed for both."""
        hot_horizon, warm_horizon = self._horizons()
        moves: list[PlannedMove] = []
        for spec in SPECS:
            hot_days = self.hot.partitions(spec)
            warm_days = dict(self.warm.partitions(spec))
            for day in due(hot_days, hot_horizon):
                moves.append(PlannedMove(HOT_TO_WARM, spec.table, day, hot_days[day]))
                warm_days[day] = warm_days.get(day, 0) + hot_days[day]
            for day in due(warm_days, warm_horizon):
                moves.append(PlannedMove(WARM_TO_COLD, spec.table, day, warm_days[day]))
        return moves

    def run_once(self, *, dry_run: bool = False, run_id: str | None = None) -> RunReport:
        """Make every due move (or list them: dry_run). A run that raises (a store down
        while planning) is recorded in `health` before the exception goes on."""
        if dry_run:
            return RunReport(planned=self.plan())
        run_id = run_id or uuid.uuid4().hex[:12]
        self.health.run_started(run_id)
        report = RunReport()
        try:
            self._run(report, run_id)
        except Exception as exc:
            self.health.run_finished(len(report.moved), report.failed, _describe(exc))
            raise
        self.health.run_finished(len(report.moved), report.failed, None)
        self.metrics.last_run_failures.set(len(report.failed))
        if not report.failed:
            self.metrics.last_success.set(time.time())
        return report

    def _run(self, report: RunReport, run_id: str) -> None:
        started = time.perf_counter()
        report.planned = self.plan()
        mover = Mover(
            self.hot,
            self.warm,
            self.cold,
            self.manifest,
            run_id=run_id,
            wal_timeout_s=self.config.archive.wal_apply_timeout_s,
        )
        hot_horizon, warm_horizon = self._horizons()
        try:
            hops = (
                (HOT_TO_WARM, self._hot_to_warm, hot_horizon),
                (WARM_TO_COLD, self._warm_to_cold, warm_horizon),
            )
            for hop, move, horizon in hops:  # every table one hop down before the next hop
                for spec in SPECS:
                    self._guarded(report, hop, spec, partial(move, report, mover, spec, horizon))
        finally:
            self._guarded(report, "manifest", None, self.manifest.flush)
        report.seconds = time.perf_counter() - started
        self._guarded(report, "status", None, self.refresh_tier_rows)

    def _guarded(
        self, report: RunReport, hop: str, spec: TableSpec | None, step: Callable[[], None]
    ) -> None:
        """Run a step that is not one move (a table's listing, a wait for drops, the manifest):
        what it raises is a failure of the run, not its end."""
        try:
            step()
        except Exception as exc:
            table = spec.table if spec is not None else ""
            _log_failure(hop, table, None, exc)
            self.metrics.failures.labels(hop=hop).inc()
            report.failed.append(Failure(hop, table, None, _describe(exc)))

    def _hot_to_warm(self, report: RunReport, mover: Mover, spec: TableSpec, horizon: date) -> None:
        """Due days in batches of up to archive.batch_days days and about archive.batch_rows
        rows: one export, insert and verification read per batch instead of per day."""
        hot_days = self.hot.partitions(spec)
        warm_days = set(self.warm.partitions(spec))
        dropped: list[date] = []
        settings = self.config.archive
        days = due(hot_days, horizon)
        for batch in _batches(days, hot_days, settings.batch_days, settings.batch_rows):
            planned = [PlannedMove(HOT_TO_WARM, spec.table, day, hot_days[day]) for day in batch]
            results = self._attempt(
                report, planned, partial(mover.hot_to_warm, spec, batch, warm_days)
            )
            dropped += [r.day for r in results if r.dropped]
            self.manifest.flush()
        if dropped:
            self.hot.wait_dropped(spec, set(dropped), settings.wal_apply_timeout_s)
            if spec is TRADES:
                self.hot.rebuild_views()

    def _warm_to_cold(
        self, report: RunReport, mover: Mover, spec: TableSpec, horizon: date
    ) -> None:
        for day in due(self.warm.partitions(spec), horizon):
            planned = PlannedMove(WARM_TO_COLD, spec.table, day, 0)
            self._attempt(report, [planned], partial(mover.warm_to_cold, spec, day))
            self.manifest.flush()

    def _attempt(
        self,
        report: RunReport,
        planned: list[PlannedMove],
        move: Callable[[], list[MoveResult] | MoveResult],
    ) -> list[MoveResult]:
        try:
            done = move()
        except Exception as exc:
            for one in planned:
                _log_failure(one.hop, one.table, one.day, exc)
                self.metrics.failures.labels(hop=one.hop).inc()
                report.failed.append(
                    Failure(one.hop, one.table, one.day.isoformat(), _describe(exc))
                )
            return []
        results = done if isinstance(done, list) else [done]
        for result in results:
            report.moved.append(result)
            self.metrics.moves.labels(hop=result.hop, table=result.table).inc()
            self.metrics.rows.labels(hop=result.hop, table=result.table).inc(result.rows)
            self.metrics.move_seconds.labels(hop=result.hop).observe(result.seconds)
        return results

    def tiers(self) -> list[TierTable]:
        """What each tier holds, per table."""
        found: list[TierTable] = []
        for spec in SPECS:
            found.append(_tier_table("hot", spec, self.hot.partitions(spec)))
            found.append(_tier_table("warm", spec, self.warm.partitions(spec)))
            parts = self.cold.partitions(spec.table)
            days = sorted({p.day for p in parts})
            found.append(
                TierTable(
                    "cold",
                    spec.table,
                    len(days),
                    days[0] if days else None,
                    days[-1] if days else None,
                    None,
                    sum(p.size_bytes for p in parts),
                )
            )
        return found

    def recent_moves(self, limit: int = 20) -> list[ManifestEntry]:
        return self.manifest.recent(limit)

    def refresh_tier_rows(self) -> None:
        for tier in self.tiers():
            if tier.rows is not None:
                self.metrics.tier_rows.labels(tier=tier.tier, table=tier.table).set(tier.rows)

    async def run_nightly(self, stop: asyncio.Event) -> None:
        """Run at archive.schedule_utc every day until `stop` is set. A run that raises is
        logged and recorded, and the loop waits for the next schedule; if the loop itself
        fails, `health` says it is dead before the exception goes on."""
        try:
            while not stop.is_set():
                now = datetime.now(UTC)
                wait_s = seconds_until(self.config.archive.schedule_utc, now)
                self.health.loop = "waiting"
                self.health.next_run_at = (now + timedelta(seconds=wait_s)).isoformat(
                    timespec="seconds"
                )
                log.info("next archive run in %.0f s", wait_s)
                if await wait_until_set(stop, wait_s):
                    break
                self.health.loop = "running"
                try:
                    report = await asyncio.to_thread(self.run_once)
                except Exception as exc:
                    log.error(
                        "archive run failed, the next run is at the next schedule: %s",
                        _describe(exc),
                        exc_info=not isinstance(exc, MarketStreamError),
                    )
                    continue
                log.info(
                    "archive run: %d moved, %d failed in %.1f s",
                    len(report.moved),
                    len(report.failed),
                    report.seconds,
                )
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.health.loop_died(_describe(exc))
            raise
        self.health.loop = "stopped"

    def _horizons(self) -> tuple[date, date]:
        now = self.now_ns()
        horizons = self.config.horizons
        return horizon_day(now, horizons.hot_days), horizon_day(now, horizons.warm_days)


def _describe(exc: BaseException) -> str:
    """One line for a failure: our errors say what they mean; others name their type."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, MarketStreamError) else f"{type(exc).__name__}: {text}"


def _log_failure(hop: str, table: str, day: date | None, exc: Exception) -> None:
    """Our errors are one line; anything else is a bug or a store surprise: its traceback."""
    where = " ".join(part for part in (hop, table, day.isoformat() if day else "") if part)
    log.error(
        "archive %s failed, kept for the next run: %s",
        where,
        _describe(exc),
        exc_info=not isinstance(exc, MarketStreamError),
        extra={"hop": hop, "table": table, "day": day},
    )


def _batches(
    days: list[date], rows: dict[date, int], max_days: int, max_rows: int
) -> list[list[date]]:
    """Consecutive due days grouped so that one batch stays within memory bounds."""
    batches: list[list[date]] = []
    current: list[date] = []
    total = 0
    for day in days:
        if current and (len(current) >= max_days or total + rows.get(day, 0) > max_rows):
            batches.append(current)
            current, total = [], 0
        current.append(day)
        total += rows.get(day, 0)
    if current:
        batches.append(current)
    return batches


def seconds_until(hh_mm: str, now: datetime) -> float:
    """Seconds from `now` to the next HH:MM UTC (tomorrow's if today's has passed)."""
    hour, minute = (int(part) for part in hh_mm.split(":"))
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


def _tier_table(tier: str, spec: TableSpec, days: dict[date, int]) -> TierTable:
    ordered = sorted(days)
    return TierTable(
        tier,
        spec.table,
        len(ordered),
        ordered[0] if ordered else None,
        ordered[-1] if ordered else None,
        sum(days.values()),
    )
