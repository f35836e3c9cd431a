"""The manifest: every step of every move, in a ClickHouse table of the warm tier.

Moves are made idempotent by the stores themselves (a day is replaced, never appended), so
the manifest is the audit trail and the source of `archive status`, not a lock: a run that
was killed leaves a move without its last step, and the next run does the move again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from clickhouse_connect.driver.client import Client

MANIFEST_TABLE: Final = "archive_manifest"
STEPS: Final = ("copied", "verified", "dropped")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    at: datetime
    run_id: str
    hop: str  # "hot->warm" or "warm->cold"
    table: str
    day: date
    step: str  # one of STEPS
    rows: int
    checksum: int
    detail: str


class Manifest:
    def __init__(self, client: Client, database: str = "default") -> None:
        self.client = client
        self.table = f"{database}.{MANIFEST_TABLE}"
        self._pending: list[ManifestEntry] = []

    def ensure_table(self) -> None:
        self.client.command(
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            "at DateTime64(3, 'UTC'), run_id String, hop LowCardinality(String), "
            "table LowCardinality(String), day Date, step LowCardinality(String), "
            "rows UInt64, checksum UInt64, detail String"
            ") ENGINE = MergeTree ORDER BY (at, hop, table, day)"
        )

    def record(self, entry: ManifestEntry) -> None:
        """Keep the entry until flush(): one insert per batch of moves, not per step."""
        self._pending.append(entry)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self.client.insert(
            self.table,
            [
                [e.at, e.run_id, e.hop, e.table, e.day, e.step, e.rows, e.checksum, e.detail]
                for e in pending
            ],
            column_names=[
                "at",
                "run_id",
                "hop",
                "table",
                "day",
                "step",
                "rows",
                "checksum",
                "detail",
            ],
        )

    def recent(self, limit: int = 20) -> list[ManifestEntry]:
        """The newest entries, newest first."""
        result = self.client.query(
            f"SELECT at, run_id, hop, table, day, step, rows, checksum, detail FROM {self.table} "  # noqa: S608
            "ORDER BY at DESC LIMIT {limit:UInt32}",
            parameters={"limit": limit},
        )
        return [
            ManifestEntry(
                at=_utc(at),
                run_id=str(run_id),
                hop=str(hop),
                table=str(table),
                day=day,
                step=str(step),
                rows=int(rows),
                checksum=int(checksum),
                detail=str(detail),
            )
            for at, run_id, hop, table, day, step, rows, checksum, detail in result.result_rows
        ]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
