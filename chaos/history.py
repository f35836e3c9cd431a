"""The archive workload: rounds of generated past days, each tiered by `archive --once`
(killed now and then), and at the end every generated day checked in every tier.

Each round generates one day due for ClickHouse and one due for Parquet (exchange `binance`,
which the replay never uses), then runs the archiver until a run succeeds. A kill order from
the fault injector SIGKILLs the next archiver run a random moment after it started; the run
that follows must finish the job. Generation itself is retried when QuestDB is down: its rows
are deterministic and QuestDB's dedup keys make a rerun a no-op.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from chaos.compare import Diff, collapse, compare_keyed, rows_of_table
from chaos.processes import Child, PeakMemory
from chaos.session import HISTORY_EXCHANGE, Horizons
from marketstream.config import PipelineConfig
from marketstream.generate.history import HistoryConfig, generate
from marketstream.schemas.columns import SPEC_BY_TABLE
from marketstream.tiers import clickhouse
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.cold_parquet import decode
from marketstream.tiers.cold_store import ColdStore
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_partitions import HotTier

SYMBOLS = ("BTC-USDT", "ETH-USDT")
TIERS = ("hot", "warm", "cold")


@dataclass
class ArchiveWorkload:
    common: list[str]  # --config FILE, placed before the command
    state_dir: Path
    log_dir: Path
    memory: PeakMemory
    horizons: Horizons
    seed: int
    trades_per_day: int
    rng: random.Random
    days: list[date] = field(default_factory=list)
    rounds: int = 0
    runs: int = 0
    failed_runs: int = 0
    kills: int = 0
    generate_failures: int = 0
    kill_order: threading.Event = field(default_factory=threading.Event)
    kill_done: threading.Event = field(default_factory=threading.Event)
    stop_event: threading.Event = field(default_factory=threading.Event)
    archiver: Child | None = None
    _thread: threading.Thread | None = None
    error: str | None = None
    last_run_s: float = 3.0  # how long the last successful archiver run took

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="chaos-archive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=600)

    def request_kill(self, timeout_s: float) -> bool:
        """Ask for the next archiver run to be killed; True once it was."""
        self.kill_done.clear()
        self.kill_order.set()
        return self.kill_done.wait(timeout_s)

    def _command(self, role: str, *args: str) -> Child:
        return Child(role, [*self.common, *args, "--state-dir", str(self.state_dir)],
                     self.log_dir, self.memory)  # fmt: skip

    def _generate(self, day: date) -> None:
        while not self.stop_event.is_set():
            child = self._command(
                "generate", "generate", "--days", "1", "--end", day.isoformat(),
                "--exchanges", HISTORY_EXCHANGE, "--symbols", ",".join(SYMBOLS),
                "--seed", str(self.seed), "--trades-per-day", str(self.trades_per_day),
            )  # fmt: skip
            child.start()
            finished = _wait(child, timeout_s=300)
            if finished and child.process is not None and child.process.returncode == 0:
                self.days.append(day)
                return
            self.generate_failures += 1
            time.sleep(1.0)

    def archive_until_done(self) -> None:
        """`archive --once` until a run succeeds; a pending kill order kills one run."""
        while True:
            child = self._command("archiver", "archive", "--once", "--json")
            self.archiver = child
            child.start()
            started = time.monotonic()
            self.runs += 1
            if self.kill_order.is_set():
                time.sleep(self.rng.uniform(0.3, 0.9) * self.last_run_s)  # within its run
                if child.process is not None and child.process.poll() is None:
                    child.kill()
                    self.kills += 1
                    self.kill_order.clear()
                    self.kill_done.set()
                    continue
            if _wait(child) and child.process is not None and child.process.returncode == 0:
                self.last_run_s = time.monotonic() - started
                return
            self.failed_runs += 1
            if self.stop_event.is_set() and self.failed_runs > 50:
                self.error = f"archive --once keeps failing: {child.log_tail(3)}"
                return
            time.sleep(2.0)

    def _loop(self) -> None:
        try:
            while not self.stop_event.is_set():
                self._generate(self.horizons.warm_day(self.rounds))
                self._generate(self.horizons.cold_day(self.rounds))
                self.archive_until_done()
                self.rounds += 1
                self.stop_event.wait(5.0)  # a nightly job, not a busy loop
        except Exception as exc:  # the suite reports it rather than dying quietly
            self.error = f"{type(exc).__name__}: {exc}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "days_generated": len(self.days),
            "archive_runs": self.runs,
            "archive_runs_failed": self.failed_runs,
            "archiver_kills": self.kills,
            "generate_failures": self.generate_failures,
            "error": self.error,
        }


def _wait(child: Child, timeout_s: float = 600.0) -> bool:
    """Until the child exits on its own; False if it had to be stopped."""
    process = child.process
    if process is None:
        return False
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        child.memory.see(child.role, process.pid)
        if time.monotonic() > deadline:
            child.stop()
            return False
        time.sleep(0.2)
    return True


def verify_history(
    config: PipelineConfig,
    endpoints: dict[str, str],
    workload: ArchiveWorkload,
) -> dict[str, Any]:
    """Every generated day, every tier: the due tier holds exactly the generated rows, the
    others hold none of that day."""
    history = HistoryConfig(
        exchanges=(HISTORY_EXCHANGE,),
        symbols=SYMBOLS,
        trades_per_day=workload.trades_per_day,
        seed=workload.seed,
    )
    hot = HotTier(QuestDBHttp(endpoints["questdb_http"], timeout_s=60))
    warm = WarmTier(clickhouse.connect(endpoints["clickhouse"]))
    cold = ColdStore.from_location(endpoints["cold"], config.s3)
    per_table: dict[str, Diff] = {}
    misplaced: list[str] = []
    for day in sorted(set(workload.days)):
        due = workload.horizons.tier_of(day)
        (generated,) = generate(history, day, day)
        for table, truth in generated.tables.items():
            spec = SPEC_BY_TABLE[table]
            held = {
                "hot": rows_of_table(spec, hot.read_day(spec, day)),
                "warm": rows_of_table(spec, warm.read_day(spec, day)),
                "cold": [],
            }
            data = cold.read_partition(table, HISTORY_EXCHANGE, day)
            if data is not None:
                held["cold"] = rows_of_table(spec, decode(data))
            held["hot"] = [r for r in held["hot"] if r[spec.names.index("exchange")]
                           == HISTORY_EXCHANGE]  # fmt: skip
            expected = collapse(spec, rows_of_table(spec, truth))
            diff = compare_keyed(spec, expected, held[due], f"{table} {day} ({due})")
            for tier in TIERS:
                if tier != due and held[tier]:
                    misplaced.append(f"{table} {day}: {len(held[tier])} rows in {tier}, due {due}")
                    diff.duplicated += len(held[tier])
            per_table.setdefault(table, Diff()).add(diff)
    total = Diff()
    for diff in per_table.values():
        total.add(diff)
    return {
        "days": len(set(workload.days)),
        "by_due_tier": {
            tier: sum(1 for d in set(workload.days) if workload.horizons.tier_of(d) == tier)
            for tier in TIERS
        },
        "total": total.as_dict(),
        "tables": {name: diff.as_dict() for name, diff in per_table.items()},
        "misplaced": misplaced[:10],
    }
