"""Real services for the integration tests, started with the same code as `services start`.

Each service runs once per pytest session on free loopback ports under a temporary
directory and is stopped afterwards. A missing redis-server or java fails the tests with
the reason: these tests exist to prove the real services work, so they never skip.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis.asyncio
from clickhouse_connect.driver.client import Client

from marketstream.config import PipelineConfig, ServicesConfig, load_config
from marketstream.errors import ServiceError
from marketstream.services import process
from marketstream.services.questdb_server import QuestDBPorts, start_questdb
from marketstream.services.redis_cluster import RedisCluster, start_redis_cluster
from marketstream.services.redis_server import start_redis
from marketstream.services.state import StateLayout
from marketstream.tiers import clickhouse as clickhouse_tier
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.redis_bus import connect_async, connect_bus_async
from tests.integration.endpoints import CONFIG_FILE, REPO, QuestDBEndpoints, S3Endpoint
from tests.integration.export_bed import ExportBed, start_export_bed

T = TypeVar("T")


def _start_or_fail(service: str, start: Callable[[], T]) -> T:
    """start(), or fail the test with the reason: missing services are errors, never skips."""
    try:
        return start()
    except ServiceError as exc:
        problem = f"{service} for the integration tests could not start: {exc}"
    pytest.fail(problem, pytrace=False)  # outside `except`: no chained traceback


@pytest.fixture(scope="session")
def pipeline_config() -> PipelineConfig:
    """The repository's configuration without MARKETSTREAM_* overrides from the shell, and
    without its polled sources: they would poll the live APIs, out of reach here (the tests
    of sources point them at a replay server themselves)."""
    return load_config(CONFIG_FILE, environ={}).model_copy(update={"sources": {}})


@pytest.fixture(scope="session")
def services_config(pipeline_config: PipelineConfig) -> ServicesConfig:
    """The services section, its cache anchored at the repository (the jar is fetched once)."""
    services = pipeline_config.services
    cache = services.cache_dir if services.cache_dir.is_absolute() else REPO / services.cache_dir
    return services.model_copy(update={"cache_dir": cache})


@pytest.fixture(scope="session")
def service_layout(tmp_path_factory: pytest.TempPathFactory) -> StateLayout:
    return StateLayout(tmp_path_factory.mktemp("services"))


@pytest.fixture(scope="session")
def redis_url(services_config: ServicesConfig, service_layout: StateLayout) -> Iterator[str]:
    server = _start_or_fail(
        "Redis",
        lambda: start_redis(
            service_layout.data_dir("redis"),
            port=process.free_port(),
            log_path=service_layout.log_path("redis"),
            pid_path=service_layout.pid_path("redis"),
            timeout_s=services_config.start_timeout_s,
        ),
    )
    yield server.url
    process.stop(server.process.pid, server.process.marker)


@pytest.fixture(scope="session")
def redis_cluster(
    services_config: ServicesConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisCluster]:
    """A real 3-master Redis Cluster from redis-server on free loopback ports."""
    root = tmp_path_factory.mktemp("redis-cluster")
    cluster = _start_or_fail(
        "Redis Cluster",
        lambda: start_redis_cluster(root, nodes=3, timeout_s=services_config.start_timeout_s),
    )
    yield cluster
    cluster.stop()


@pytest.fixture
async def cluster_client(redis_cluster: RedisCluster) -> AsyncIterator[redis.asyncio.RedisCluster]:
    """A cluster client, every master emptied first."""
    connection = connect_bus_async(redis_cluster.url)
    assert isinstance(connection, redis.asyncio.RedisCluster)
    await connection.flushall(target_nodes=redis.asyncio.RedisCluster.PRIMARIES)
    yield connection
    await connection.aclose()


@pytest.fixture(scope="session")
def questdb(
    services_config: ServicesConfig, service_layout: StateLayout
) -> Iterator[QuestDBEndpoints]:
    server = _start_or_fail(
        "QuestDB",
        lambda: start_questdb(
            services_config,
            service_layout.data_dir("questdb"),
            ports=QuestDBPorts.pick(),
            log_path=service_layout.log_path("questdb"),
            pid_path=service_layout.pid_path("questdb"),
        ),
    )
    http = QuestDBHttp(server.http_url)
    yield QuestDBEndpoints(
        http_url=server.http_url,
        ilp_conf=http.sender_conf(),
        pg_port=server.ports.pg,
        ilp_tcp_port=server.ports.ilp,
        http=http,
    )
    process.stop(server.process.pid, server.process.marker)


@pytest.fixture(scope="session")
def clickhouse(service_layout: StateLayout) -> Iterator[Client]:
    """The in-process ClickHouse engine: one path per process, so one per pytest session."""
    client = _start_or_fail(
        "ClickHouse (chdb)",
        lambda: clickhouse_tier.connect(f"chdb://{service_layout.data_dir('clickhouse')}"),
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def s3(
    pipeline_config: PipelineConfig, services_config: ServicesConfig, service_layout: StateLayout
) -> Iterator[S3Endpoint]:
    import boto3  # noqa: PLC0415 - only the S3 tests pay for importing boto3

    moto_server = Path(sys.executable).with_name("moto_server")
    if not moto_server.is_file():
        pytest.fail(f"{moto_server} not found: install moto[server] (make python-deps)")
    port = process.free_port()

    def start_moto() -> process.ServiceProcess:
        spawned = process.spawn(
            "moto_server",
            [str(moto_server), "-H", process.LOOPBACK, "-p", str(port)],
            marker=str(port),
            log_path=service_layout.log_path("moto"),
            pid_path=service_layout.pid_path("moto"),
        )
        process.wait_until_answering(
            spawned,
            lambda: process.tcp_error(process.LOOPBACK, port),
            services_config.start_timeout_s,
        )
        return spawned

    spawned = _start_or_fail("moto_server", start_moto)
    endpoint_url = f"http://{process.LOOPBACK}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=pipeline_config.s3.region,
        aws_access_key_id="testing",  # moto accepts any credentials
        aws_secret_access_key="testing",  # noqa: S106 - a dummy for moto
    )
    yield S3Endpoint(endpoint_url=endpoint_url, client=client)
    process.stop(spawned.pid, spawned.marker)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client on the session's Redis, emptied first: each test starts clean."""
    connection = connect_async(redis_url)
    await connection.flushdb()
    yield connection
    await connection.aclose()


@pytest.fixture(scope="session")
def warm_gateway(
    services_config: ServicesConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The warm gateway (`marketstream warm-server`) on its own engine directory: its DSN.

    Another directory than the `clickhouse` fixture's: that engine is open in this process.
    """
    from marketstream.services.gateway_process import spawn_warm_server  # noqa: PLC0415

    layout = StateLayout(tmp_path_factory.mktemp("warm-gateway"))
    server = _start_or_fail(
        "warm gateway",
        lambda: process.started(
            spawn_warm_server(
                layout.data_dir("clickhouse"),
                port=process.free_port(),
                log_path=layout.log_path("clickhouse"),
                pid_path=layout.pid_path("clickhouse"),
            ),
            services_config.start_timeout_s,
        ),
    )
    yield server.url
    process.stop(server.process.pid, server.process.marker)


@pytest.fixture(scope="module")
def export_bed(
    services_config: ServicesConfig,
    tmp_path_factory: pytest.TempPathFactory,
    s3: S3Endpoint,
    redis_url: str,
    request: pytest.FixtureRequest,
) -> Iterator[ExportBed]:
    """The export tests' data over the three tiers (`export_bed`), one per test module, with
    the cold store's keys in this process's environment, as a user of the exports sets them."""
    bucket = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    with pytest.MonkeyPatch.context() as patch:
        for bed in start_export_bed(services_config, tmp_path_factory, s3, redis_url, bucket):
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                patch.setenv(key, bed.tiers.environ[key])
            yield bed
