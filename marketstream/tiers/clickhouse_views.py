"""ClickHouse views `<table>_all`: the warm MergeTree table and the cold Parquet files as one.

SQL users query `trades_all` and see every day the warm and cold tiers hold, with the warm
table's column names and types: the cold side reads its files with the warm types as its
`structure` (see `cold_store.clickhouse_structure`), which also keeps a view over a cold tier
without files valid. The archiver moves a day to cold before it drops it from warm, so a
day may briefly be in both; queries that must not double count can filter on the days of
one tier.

Run after `clickhouse_tables.create_all_sql`: ClickHouse checks a view's tables when it is
created. The statements replace existing views, so running them again after the cold
location changes is safe. No credentials are in them: the engine reading s3() uses its own
(see `S3ColdStore._table_function`).
"""

from __future__ import annotations

import re
from typing import Final

from marketstream.schemas.columns import SPECS, TableSpec
from marketstream.tiers.cold_store import ColdStore

VIEW_SUFFIX: Final = "_all"
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def view_name(spec: TableSpec) -> str:
    return f"{spec.table}{VIEW_SUFFIX}"


def create_view_sql(spec: TableSpec, store: ColdStore, database: str = "default") -> str:
    """CREATE OR REPLACE VIEW <db>.<table>_all: warm rows UNION ALL cold rows."""
    if not _IDENTIFIER.fullmatch(database):
        raise ValueError(f"database {database!r}: expected a plain identifier ([A-Za-z0-9_])")
    columns = ", ".join(spec.names)
    return (
        f"CREATE OR REPLACE VIEW {database}.{view_name(spec)} AS "  # noqa: S608 - names from specs
        f"SELECT {columns} FROM {database}.{spec.table} "
        f"UNION ALL SELECT {columns} FROM {store.clickhouse_source(spec.table)}"
    )


def create_all_views_sql(store: ColdStore, database: str = "default") -> list[str]:
    return [create_view_sql(spec, store, database) for spec in SPECS]
