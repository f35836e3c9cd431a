"""The archiver's ClickHouse side: day partitions of the warm tables, replaced atomically.

A day arrives in a staging table first and is checked there; `REPLACE PARTITION` then swaps
it into the warm table in one step, so readers never see half a day and a re-run after a
crash replaces the day again instead of appending to it.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from marketstream.schemas.arrow import conform
from marketstream.schemas.checksum import key_checksum
from marketstream.schemas.columns import SPECS, TableSpec
from marketstream.tiers.clickhouse_tables import create_table_sql

STAGE_SUFFIX: Final = "__stage"


def partition_id(day: date) -> str:
    """ClickHouse's id of the `toDate(ts)` partition holding `day`."""
    return day.strftime("%Y%m%d")


class WarmTier:
    """The warm tables of `database` through a clickhouse-connect client (chdb or HTTP)."""

    name = "warm"

    def __init__(self, client: Client, database: str = "default") -> None:
        self.client = client
        self.database = database

    def ensure_tables(self) -> None:
        """The warm tables and their staging twins, created if missing."""
        for spec in SPECS:
            self.client.command(create_table_sql(spec, self.database))
            self.client.command(create_table_sql(spec, self.database, self._stage_name(spec)))

    def partitions(self, spec: TableSpec, *, stage: bool = False) -> dict[date, int]:
        table = self._stage_name(spec) if stage else spec.table
        result = self.client.query(
            "SELECT partition_id, sum(rows) FROM system.parts "
            "WHERE database = {db:String} AND table = {table:String} AND active "
            "GROUP BY partition_id",
            parameters={"db": self.database, "table": table},
        )
        return {
            date(int(pid[:4]), int(pid[4:6]), int(pid[6:8])): int(rows)
            for pid, rows in result.result_rows
            if int(rows) > 0
        }

    def read_day(self, spec: TableSpec, day: date, *, stage: bool = False) -> pa.Table:
        return self.read_days(spec, [day], stage=stage)

    def read_days(self, spec: TableSpec, days: list[date], *, stage: bool = False) -> pa.Table:
        table = self._stage_name(spec) if stage else spec.table
        columns = ", ".join(spec.names)
        arrow = self.client.query_arrow(
            f"SELECT {columns} FROM {self.database}.{table} "  # noqa: S608 - names from specs
            f"WHERE toDate({spec.timestamp}) IN {{days:Array(Date)}}",
            parameters={"days": [day.isoformat() for day in days]},
        )
        return conform(spec, arrow)

    def day_checksum(self, spec: TableSpec, day: date, *, stage: bool = False) -> tuple[int, int]:
        """(rows, key checksum) of a day as stored, to compare with the generator's truth
        (the archiver's own verification uses `row_checksum`, every column)."""
        return key_checksum(spec, self.read_day(spec, day, stage=stage))

    def stage_days(self, spec: TableSpec, rows: pa.Table) -> None:
        """Make the staging table hold exactly `rows` (one archiver runs at a time)."""
        self.client.command(f"TRUNCATE TABLE {self.database}.{self._stage_name(spec)}")
        if rows.num_rows:
            self.client.insert_arrow(f"{self.database}.{self._stage_name(spec)}", rows)

    def commit_days(self, spec: TableSpec, days: list[date]) -> None:
        """Swap each staged day into the warm table (one ALTER; each day's swap is atomic),
        then empty the stage.

        A day staged without rows replaces the warm day with nothing, as it should."""
        stage = f"{self.database}.{self._stage_name(spec)}"
        replaces = ", ".join(
            f"REPLACE PARTITION ID '{partition_id(day)}' FROM {stage}" for day in days
        )
        self.client.command(f"ALTER TABLE {self.database}.{spec.table} {replaces}")
        self.client.command(f"TRUNCATE TABLE {stage}")

    def day_counts(self, spec: TableSpec, days: list[date]) -> dict[date, int]:
        """Rows per day of the warm table, counted by the engine."""
        result = self.client.query(
            f"SELECT toDate({spec.timestamp}) AS day, count() "  # noqa: S608 - names from specs
            f"FROM {self.database}.{spec.table} "
            f"WHERE toDate({spec.timestamp}) IN {{days:Array(Date)}} GROUP BY day",
            parameters={"days": [day.isoformat() for day in days]},
        )
        return {day: int(rows) for day, rows in result.result_rows}

    def drop_day(self, spec: TableSpec, day: date) -> None:
        self._drop(spec.table, day)

    def total_bytes(self, spec: TableSpec) -> tuple[int, int]:
        """(compressed, uncompressed) bytes of the warm table's active parts."""
        result = self.client.query(
            "SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts "
            "WHERE database = {db:String} AND table = {table:String} AND active",
            parameters={"db": self.database, "table": spec.table},
        )
        compressed, uncompressed = result.result_rows[0]
        return int(compressed or 0), int(uncompressed or 0)

    def _drop(self, table: str, day: date) -> None:
        self.client.command(
            f"ALTER TABLE {self.database}.{table} DROP PARTITION ID '{partition_id(day)}'"
        )

    @staticmethod
    def _stage_name(spec: TableSpec) -> str:
        return spec.table + STAGE_SUFFIX
