"""`marketstream run` as processes: ingest, N hot writers and the API, supervised, until Ctrl-C.

The supervisor creates the hot tables and views first (the writers would create the tables,
not the views `query candles` reads), then starts the children. On stop, ingest goes first;
the writers are stopped once every record stream is delivered and acknowledged (bounded by
`supervisor.stop_timeout_s`), so what ingest flushed on its way out is written too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from marketstream.config import PipelineConfig
from marketstream.errors import ServiceError
from marketstream.run.supervisor import ChildSpec, Supervisor, child_specs
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_tables import create_all_sql, create_views_sql
from marketstream.tiers.redis_bus import connect_bus_async
from marketstream.wiring import PipelineEndpoints
from marketstream.writers.hot_writer_questdb import wal_applied
from marketstream.writers.hot_writer_redis import streams_drained as writers_drained

POLL_S = 0.05


def create_schema(questdb_http: str) -> None:
    """The hot tables and the 1m OHLCV view that `query candles` reads (idempotent)."""
    questdb = QuestDBHttp(questdb_http)
    for sql in [*create_all_sql(), *create_views_sql()]:
        questdb.exec(sql)


async def streams_drained(redis_url: str, group: str) -> bool:
    """True when every record stream has been delivered to `group` and acknowledged (a
    single Redis or a Cluster, as the URL says)."""
    client = connect_bus_async(redis_url)
    try:
        return await writers_drained(client, group)
    finally:
        await client.aclose()


async def wait_drained(
    endpoints: PipelineEndpoints, group: str, *, queryable: bool = False
) -> None:
    """Wait until the streams are drained (and, if queryable, QuestDB applied its WAL);
    bound it with asyncio.timeout: writers that cannot write never drain."""
    while not await streams_drained(endpoints.redis, group):
        await asyncio.sleep(POLL_S)
    if queryable:
        questdb = QuestDBHttp(endpoints.questdb_http)
        while not await asyncio.to_thread(wal_applied, questdb):
            await asyncio.sleep(POLL_S)


def pipeline_supervisor(
    config: PipelineConfig,
    endpoints: PipelineEndpoints,
    specs: list[ChildSpec],
    *,
    env: Mapping[str, str] | None = None,
) -> Supervisor:
    """The children in `specs`, stopped in order with the streams drained in between."""
    return Supervisor(
        specs,
        config.supervisor,
        env=env,
        metrics_host=config.hot.metrics_host,
        drain=lambda: wait_drained(endpoints, config.hot.group),
    )


async def run_processes(
    config: PipelineConfig,
    endpoints: PipelineEndpoints,
    stop: asyncio.Event,
    *,
    writers: int,
    config_file: Path | None,
    state_dir: Path | None,
    serve: bool = False,
    on_started: Callable[[Supervisor], Awaitable[None]] | None = None,
) -> None:
    """`marketstream run`: the schema, then ingest, `writers` writers and (with `serve`) the
    API until `stop`; `on_started` gets the supervisor once the children run."""
    await asyncio.to_thread(create_schema, endpoints.questdb_http)
    specs = child_specs(
        config, writers=writers, config_file=config_file, state_dir=state_dir, serve=serve
    )
    supervisor = pipeline_supervisor(config, endpoints, specs)
    for spec in specs:
        if spec.url is not None:
            print(f"{spec.name}: {spec.url} (OpenAPI docs at {spec.url}/docs)", flush=True)
    await supervisor.run(stop, on_started)


async def scrape(url: str) -> list[Metric]:
    """The metric families a child serves at `url` (its /metrics)."""
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            response = await client.get(url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot read metrics at {url}: {exc}") from None
    return list(text_string_to_metric_families(response.text))


async def health(url: str) -> dict[str, object]:
    """A child's /healthz detail (its JSON), whatever its status code says."""
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot read health at {url}: {exc}") from None
    detail: dict[str, object] = response.json()
    return detail


def sample_sum(families: Iterable[Metric], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
