"""The archive status as data: partitions per tier, the last run, the last moves (what
`marketstream archive status --json` prints and `GET /v1/archive` answers)."""

from __future__ import annotations

from typing import Any

from marketstream.archiver.health import load_last_run
from marketstream.archiver.runner import Archiver


def status_dict(archiver: Archiver, moves: int) -> dict[str, Any]:
    """The status of a prepared archiver, with its last `moves` move steps."""
    path = archiver.health.path
    last_run = load_last_run(path) if path is not None else None
    return {
        "last_run": last_run.as_dict() if last_run is not None else None,
        "tiers": [
            {
                "tier": t.tier,
                "table": t.table,
                "days": t.days,
                "first": t.first.isoformat() if t.first else None,
                "last": t.last.isoformat() if t.last else None,
                "rows": t.rows,
                "bytes": t.bytes,
            }
            for t in archiver.tiers()
        ],
        "moves": [
            {
                "at": m.at.isoformat(),
                "run": m.run_id,
                "hop": m.hop,
                "table": m.table,
                "day": m.day.isoformat(),
                "step": m.step,
                "rows": m.rows,
                "checksum": f"{m.checksum:016x}",
            }
            for m in archiver.recent_moves(moves)
        ],
    }
