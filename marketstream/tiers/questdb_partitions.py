"""The archiver's QuestDB side: list a table's day partitions, wait for its WAL, export, drop.

Writes reach a QuestDB WAL table in two steps: committed to the WAL (the sequencer's txn),
then applied to the table (the writer's txn), asynchronously. Only applied rows are counted
or exported, so a move first waits until everything committed to the table is applied: a row
committed but not applied would otherwise be in neither the export nor the count, and go with
the partition. A suspended table (applying stopped on an error) never catches up: its moves
fail until an operator resumes it.

A day is exported as Parquet through `/exp`, which keeps nanosecond timestamps and the book
arrays exactly. Dropping a partition of `trades` invalidates the 1m materialized view, so the
archiver rebuilds views once a run has dropped partitions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from marketstream.errors import MarketStreamError, ServiceError
from marketstream.retry import wait_for
from marketstream.schemas.arrow import arrow_schema, conform
from marketstream.schemas.columns import Column, TableSpec
from marketstream.schemas.records import Kind
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_tables import OHLCV_1M_VIEW


def _exported(column: Column) -> str:
    """The select-list item for a column: QuestDB 9.3.4's Parquet export writes VARCHAR
    columns as all nulls (SELECT shows the values), but exports them intact as STRING."""
    if column.kind is Kind.TEXT:
        return f"cast({column.name} AS STRING) {column.name}"
    return column.name


def exported_columns(spec: TableSpec) -> str:
    """The select list of a Parquet export of `spec`'s table (see `_exported`)."""
    return ", ".join(_exported(column) for column in spec.columns)


class WalNotAppliedError(MarketStreamError):
    """QuestDB has not applied what was committed to a table (suspended, or too slow)."""


@dataclass(frozen=True, slots=True)
class WalState:
    """A table's row of `wal_tables()`."""

    writer_txn: int  # the last transaction applied to the table
    sequencer_txn: int  # the last transaction committed to its WAL
    suspended: bool
    error: str  # why applying is suspended, when QuestDB says


class HotTier:
    """QuestDB at `http`; table and view names come from our specs, never from input."""

    name = "hot"

    def __init__(self, http: QuestDBHttp) -> None:
        self.http = http

    def tables(self) -> set[str]:
        answer = self.http.exec("SELECT table_name FROM tables()")
        return {str(row[0]) for row in answer["dataset"]}

    def partitions(self, spec: TableSpec) -> dict[date, int]:
        """Rows per day partition; empty when the table does not exist yet."""
        if spec.table not in self.tables():
            return {}
        answer = self.http.exec(
            f"SELECT name, numRows FROM table_partitions('{spec.table}')"  # noqa: S608 - spec name
        )
        return {date.fromisoformat(str(name)[:10]): int(rows) for name, rows in answer["dataset"]}

    def wal(self, spec: TableSpec) -> WalState | None:
        """The table's WAL state; None for a table that does not exist (or is not WAL)."""
        answer = self.http.exec(
            "SELECT writerTxn, sequencerTxn, suspended, errorTag, errorMessage "  # noqa: S608 - spec name
            f"FROM wal_tables() WHERE name = '{spec.table}'"
        )
        for writer, sequencer, suspended, tag, message in answer["dataset"]:
            error = ": ".join(str(part) for part in (tag, message) if part)
            return WalState(int(writer), int(sequencer), bool(suspended), error)
        return None

    def wait_applied(self, spec: TableSpec, timeout_s: float, poll_s: float = 0.05) -> int:
        """Wait until QuestDB has applied every transaction committed to the table when this
        was called; return that transaction number (-1 for no table).

        The target is fixed at the call, so writers that keep committing (today's rows) do
        not make the wait endless. Raises WalNotAppliedError at once for a suspended table, and
        after `timeout_s` for one that does not catch up."""
        state = self.wal(spec)
        if state is None:
            return -1
        target = state.sequencer_txn
        deadline = time.monotonic() + timeout_s
        while True:
            if state.suspended:
                why = f" ({state.error})" if state.error else ""
                raise WalNotAppliedError(
                    f"QuestDB at {self.http.base_url}: WAL apply of {spec.table} is suspended"
                    f"{why} with {state.sequencer_txn - state.writer_txn} transaction(s) not "
                    f"applied; resume it (ALTER TABLE {spec.table} RESUME WAL) and the next run "
                    "moves its days"
                )
            if state.writer_txn >= target:
                return target
            if time.monotonic() >= deadline:
                raise WalNotAppliedError(
                    f"QuestDB at {self.http.base_url}: {spec.table} applied its WAL up to "
                    f"transaction {state.writer_txn}, expected {target} within {timeout_s:g} s "
                    "(archive.wal_apply_timeout_s); its days are kept for the next run"
                )
            time.sleep(poll_s)
            state = self.wal(spec) or state

    def read_day(self, spec: TableSpec, day: date) -> pa.Table:
        return self.read_days(spec, day, day)

    def read_days(self, spec: TableSpec, first: date, last: date) -> pa.Table:
        """Every row of the days first..last (inclusive), in one export."""
        columns = exported_columns(spec)
        low, high = first.isoformat(), (last + timedelta(days=1)).isoformat()
        data = self.http.export(
            f"SELECT {columns} FROM {spec.table} "  # noqa: S608 - names from our specs
            f"WHERE {spec.timestamp} >= '{low}' AND {spec.timestamp} < '{high}'"
        )
        if not data:
            return arrow_schema(spec).empty_table()
        return conform(spec, pq.read_table(pa.BufferReader(data)))

    def drop_days(self, spec: TableSpec, days: list[date]) -> None:
        """Queue the partitions' drop (one WAL transaction, applied asynchronously)."""
        if days:
            listed = ", ".join(f"'{day.isoformat()}'" for day in days)
            self.http.exec(f"ALTER TABLE {spec.table} DROP PARTITION LIST {listed}")

    def wait_dropped(self, spec: TableSpec, days: set[date], timeout_s: float = 60.0) -> None:
        """Until none of `days` is listed any more: the WAL has applied the drops."""
        if not wait_for(lambda: not days & set(self.partitions(spec)), timeout_s, 0.05):
            left = sorted(days & set(self.partitions(spec)))
            raise ServiceError(
                f"QuestDB at {self.http.base_url}: {spec.table} still has partitions "
                f"{', '.join(d.isoformat() for d in left[:5])} {timeout_s:.0f} s after "
                "their drop (is WAL apply suspended? see wal_tables())"
            )

    def rebuild_views(self) -> None:
        """Recompute the 1m view from what `trades` still holds (a drop invalidated it)."""
        answer = self.http.exec("SELECT view_name FROM materialized_views()")
        if any(row[0] == OHLCV_1M_VIEW for row in answer["dataset"]):
            self.http.exec(f"REFRESH MATERIALIZED VIEW {OHLCV_1M_VIEW} FULL")
