"""Wiring: which endpoint each part connects to, and the parts built on those endpoints.

An endpoint comes from the configuration (file or environment) first, else from the
`services.json` that `marketstream services start` wrote in the state directory
(`services.state`). This module is the one place that asks: the CLI, `run`, `demo` and the
benchmarks get their stores, readers and daemons from here, so no store adapter, daemon or
reader knows where its endpoints come from.

The stores, readers and the archiver are imported where they are built: `ingest` and
`write-hot` ask this module for their endpoints and must not pay for pyarrow, boto3 and the
archiver at every (re)start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from marketstream.config import PipelineConfig
from marketstream.services.state import require_endpoint, state_root

if TYPE_CHECKING:
    from marketstream.archiver.runner import Archiver
    from marketstream.query.all_tiers import TieredQueries
    from marketstream.query.hot_queries import HotQueries
    from marketstream.tiers.cold_store import ColdStore
    from marketstream.tiers.questdb import QuestDBHttp


@dataclass(frozen=True, slots=True)
class PipelineEndpoints:
    """What the hot path (ingest and the hot writer) connects to."""

    redis: str
    questdb_http: str


def endpoint(config: PipelineConfig, state_dir: Path | None, name: str) -> str:
    """One endpoint by its `endpoints.<name>` key, or ServiceError saying how to get one."""
    return require_endpoint(config, state_dir, name)


def pipeline_endpoints(config: PipelineConfig, state_dir: Path | None) -> PipelineEndpoints:
    return PipelineEndpoints(
        redis=endpoint(config, state_dir, "redis"),
        questdb_http=endpoint(config, state_dir, "questdb_http"),
    )


def questdb_http(config: PipelineConfig, state_dir: Path | None) -> QuestDBHttp:
    from marketstream.tiers.questdb import QuestDBHttp  # noqa: PLC0415

    return QuestDBHttp(endpoint(config, state_dir, "questdb_http"))


def cold_store(config: PipelineConfig, state_dir: Path | None) -> ColdStore:
    from marketstream.tiers.cold_store import ColdStore  # noqa: PLC0415 - pyarrow, boto3

    return ColdStore.from_location(endpoint(config, state_dir, "cold"), config.s3)


def hot_queries(config: PipelineConfig, state_dir: Path | None) -> HotQueries:
    """QuestDB over PG wire; a context manager that closes the connection."""
    from marketstream.query.hot_queries import HotQueries  # noqa: PLC0415 - psycopg

    return HotQueries.connect(endpoint(config, state_dir, "questdb_pg"))


@contextmanager
def open_tiered(config: PipelineConfig, state_dir: Path | None) -> Iterator[TieredQueries]:
    """TieredQueries on the configured (or locally started) QuestDB, ClickHouse and cold store."""
    from marketstream.query.all_tiers import TieredQueries  # noqa: PLC0415
    from marketstream.tiers import clickhouse  # noqa: PLC0415
    from marketstream.tiers.clickhouse_partitions import WarmTier  # noqa: PLC0415
    from marketstream.tiers.questdb_partitions import HotTier  # noqa: PLC0415

    hot_tier = HotTier(questdb_http(config, state_dir))
    cold = cold_store(config, state_dir)
    client = clickhouse.connect(endpoint(config, state_dir, "clickhouse"))
    try:
        with hot_queries(config, state_dir) as hot:
            yield TieredQueries(hot, hot_tier, WarmTier(client), cold)
    finally:
        client.close()


def build_archiver(config: PipelineConfig, state_dir: Path | None) -> Archiver:
    """The archiver on the configured (or locally started) QuestDB, ClickHouse and cold store;
    its last run is saved in the state directory (for `archive status`)."""
    from marketstream.archiver.health import LAST_RUN_FILE, ArchiverHealth  # noqa: PLC0415
    from marketstream.archiver.runner import Archiver  # noqa: PLC0415
    from marketstream.tiers import clickhouse  # noqa: PLC0415
    from marketstream.tiers.clickhouse_partitions import WarmTier  # noqa: PLC0415
    from marketstream.tiers.questdb_partitions import HotTier  # noqa: PLC0415

    hot = HotTier(questdb_http(config, state_dir))
    warm = WarmTier(clickhouse.connect(endpoint(config, state_dir, "clickhouse")))
    health = ArchiverHealth(path=state_root(config, state_dir) / LAST_RUN_FILE)
    return Archiver(config, hot, warm, cold_store(config, state_dir), health=health)
