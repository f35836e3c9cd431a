"""What the archiver tells `/healthz` and `archive status`: the last run and the nightly loop.

A run that failed a move, or raised, makes the archiver unhealthy until a later run succeeds:
the failed days are kept at their source and retried by the next run, but someone should
look. A nightly loop that ended on an error is unhealthy for good (the process then exits
non-zero). The last run is also written to the state directory, so that `archive status`,
another process, can show it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

LAST_RUN_FILE: Final = "archiver-last-run.json"
MAX_LISTED: Final = 20  # failures listed by /healthz and status; the count is always whole

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failure:
    hop: str
    table: str
    day: str | None  # None: not one day's (a table's listing, a wait for drops)
    error: str


@dataclass(slots=True)
class LastRun:
    run_id: str
    started_at: str
    finished_at: str | None = None
    moved: int = 0
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None  # the run itself raised (then it did not finish its moves)

    @property
    def ok(self) -> bool:
        return self.finished_at is not None and not self.failures and self.error is None

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        """Every field, `failed` (the count), and the first `limit` failures (all: None)."""
        body = asdict(self)
        body["failed"] = len(self.failures)
        body["failures"] = body["failures"][:limit]
        body["ok"] = self.ok
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> LastRun:
        return cls(
            run_id=str(body["run_id"]),
            started_at=str(body["started_at"]),
            finished_at=body.get("finished_at"),
            moved=int(body.get("moved", 0)),
            failures=[Failure(**f) for f in body.get("failures", [])],
            error=body.get("error"),
        )


@dataclass(slots=True)
class ArchiverHealth:
    """Updated by the runs and the loop; read by /healthz (same process) and saved for
    `archive status` (another process) when a path is given."""

    path: Path | None = None
    last_run: LastRun | None = None
    loop: str = "not started"  # "waiting", "running", "stopped", or "dead: <why>"
    next_run_at: str | None = None
    runs: int = 0
    failed_runs: int = 0

    def run_started(self, run_id: str) -> None:
        self.last_run = LastRun(run_id, _now())

    def run_finished(self, moved: int, failures: list[Failure], error: str | None) -> None:
        run = self.last_run
        if run is None:
            return
        run.finished_at, run.moved, run.failures, run.error = _now(), moved, failures, error
        self.runs += 1
        self.failed_runs += 0 if run.ok else 1
        self._save(run)

    def loop_died(self, why: str) -> None:
        self.loop = f"dead: {why}"

    def snapshot(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, detail) for /healthz."""
        last = self.last_run
        ok = not self.loop.startswith("dead") and (last is None or last.ok)
        return ok, {
            "loop": self.loop,
            "next_run_at": self.next_run_at,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "last_run": last.as_dict(MAX_LISTED) if last is not None else None,
        }

    def _save(self, run: LastRun) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(run.as_dict(), option=orjson.OPT_INDENT_2))
            os.replace(tmp, self.path)
        except OSError as exc:  # the run's outcome is still in the log and /healthz
            log.error("could not save the last archive run to %s: %s", self.path, exc)


def load_last_run(path: Path) -> LastRun | None:
    """The last run saved at `path`; None if no run was saved or the file is unreadable."""
    try:
        return LastRun.from_dict(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
