"""Start, stop and report the local services of one state directory (the `services` commands).

Only endpoints the configuration leaves unset are served locally: Redis, QuestDB and the warm
gateway (the one process that opens the ClickHouse engine directory, serving it over HTTP) as
background processes, cold storage as a directory. Starting is idempotent: a recorded process
that is still ours is reused.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path

from marketstream.config import PipelineConfig, redact_url
from marketstream.services import process
from marketstream.services.checks import clickhouse_error, endpoint_checks
from marketstream.services.gateway_process import GatewaySetup, spawn_warm_server, wait_warm_server
from marketstream.services.questdb_server import (
    QuestDBPorts,
    install_questdb,
    questdb_error,
    spawn_questdb,
    wait_questdb,
)
from marketstream.services.redis_server import redis_error, spawn_redis, wait_redis
from marketstream.services.state import (
    ENDPOINT_NAMES,
    EndpointStatus,
    ProcessRecord,
    ServicesRecord,
    ServicesStatus,
    StateLayout,
    configured_endpoints,
    load_record,
    save_record,
    state_lock,
    state_root,
)

Wait = Callable[[], None]
QUESTDB_ENDPOINTS = ("questdb_http", "questdb_pg", "questdb_ilp")


def start_services(config: PipelineConfig, state_dir: Path | None = None) -> ServicesStatus:
    """Start what is not running yet, record it in services.json, and report every endpoint."""
    root = state_root(config, state_dir)
    layout = StateLayout(root)
    timeout_s = config.services.start_timeout_s
    with state_lock(root, timeout_s):
        record = load_record(root) or ServicesRecord()
        endpoints: dict[str, str] = {}
        waits: list[Wait] = []
        try:
            if config.endpoints.redis is None:
                waits.append(_ensure_redis(layout, record, endpoints, timeout_s))
            if not any(getattr(config.endpoints, name) for name in QUESTDB_ENDPOINTS):
                waits.append(_ensure_questdb(config, layout, record, endpoints))
            if config.endpoints.clickhouse is None:
                setup = GatewaySetup(
                    cold=_local_stores(config, layout).get("cold", config.endpoints.cold),
                    s3=config.s3,
                    limits=config.services.warm_gateway,
                )
                waits.append(_ensure_warm_server(layout, record, endpoints, timeout_s, setup))
        finally:
            # Saved before waiting: `stop`, and the next `start`, must find whatever was spawned.
            record.endpoints = {**record.endpoints, **endpoints}
            save_record(root, record)
        for wait in waits:
            wait()
        endpoints.update(_local_stores(config, layout))
        record.state = "running"
        record.endpoints = endpoints
        save_record(root, record)
    return services_status(config, root)


def _ensure_redis(
    layout: StateLayout, record: ServicesRecord, endpoints: dict[str, str], timeout_s: float
) -> Wait:
    reused = _reuse(
        record, "redis", ("redis",), endpoints, timeout_s, label="redis-server", error=redis_error
    )
    if reused is not None:
        return reused
    server = spawn_redis(
        layout.redis_dir,
        port=_same_port_if_free(record.endpoints.get("redis")),
        log_path=layout.log_path("redis"),
        pid_path=layout.pid_path("redis"),
    )
    record.processes["redis"] = _as_record(server.process)
    endpoints["redis"] = server.url
    return lambda: wait_redis(server, timeout_s)


def _ensure_questdb(
    config: PipelineConfig,
    layout: StateLayout,
    record: ServicesRecord,
    endpoints: dict[str, str],
) -> Wait:
    timeout_s = config.services.start_timeout_s
    reused = _reuse(
        record,
        "questdb",
        QUESTDB_ENDPOINTS,
        endpoints,
        timeout_s,
        label="QuestDB",
        error=questdb_error,
    )
    if reused is not None:
        return reused
    ports = [_port_of(record.endpoints.get(name)) for name in QUESTDB_ENDPOINTS]
    last = None if None in ports else QuestDBPorts(*(p for p in ports if p is not None))
    server = spawn_questdb(
        install_questdb(config.services),
        layout.questdb_root,
        ports=QuestDBPorts.pick(last),
        java_opts=config.services.questdb.java_opts,
        log_path=layout.log_path("questdb"),
        pid_path=layout.pid_path("questdb"),
    )
    record.processes["questdb"] = _as_record(server.process)
    endpoints.update(
        questdb_http=server.http_url, questdb_pg=server.pg_url, questdb_ilp=server.ilp_url
    )
    return lambda: wait_questdb(server, timeout_s)


def _ensure_warm_server(
    layout: StateLayout,
    record: ServicesRecord,
    endpoints: dict[str, str],
    timeout_s: float,
    setup: GatewaySetup,
) -> Wait:
    """The warm gateway on the engine directory, recorded as `clickhouse: http://...`."""
    reused = _reuse(
        record,
        "clickhouse",
        ("clickhouse",),
        endpoints,
        timeout_s,
        label="warm gateway",
        error=clickhouse_error,
    )
    if reused is not None:
        return reused
    server = spawn_warm_server(
        layout.clickhouse_dir,
        # a chdb:// DSN recorded before the gateway has no port
        port=_same_port_if_free(record.endpoints.get("clickhouse")),
        log_path=layout.log_path("clickhouse"),
        pid_path=layout.pid_path("clickhouse"),
        setup=setup,  # the cold directory exists by now: the gateway checks it at start
    )
    record.processes["clickhouse"] = _as_record(server.process)
    endpoints["clickhouse"] = server.url
    return lambda: wait_warm_server(server, timeout_s)


def _reuse(
    record: ServicesRecord,
    name: str,
    endpoint_names: Sequence[str],
    endpoints: dict[str, str],
    timeout_s: float,
    *,
    label: str,
    error: Callable[[str], str | None],
) -> Wait | None:
    """The wait on recorded process `name` if it is still ours, its recorded endpoints kept
    in `endpoints`; None when there is none to reuse. The first endpoint is the one checked."""
    previous = record.processes.get(name)
    url = record.endpoints.get(endpoint_names[0])
    if previous is None or url is None or not process.is_ours(previous.pid, previous.marker):
        return None
    endpoints.update({n: u for n in endpoint_names if (u := record.endpoints.get(n))})
    running = _as_process(label, previous)
    return lambda: process.wait_until_answering(running, lambda: error(url), timeout_s)


def _local_stores(config: PipelineConfig, layout: StateLayout) -> dict[str, str]:
    """The cold storage directory, created when served locally."""
    stores: dict[str, str] = {}
    cold = config.endpoints.cold
    if cold is None:
        layout.cold_dir.mkdir(parents=True, exist_ok=True)
        stores["cold"] = str(layout.cold_dir)
    elif "://" not in cold:
        Path(cold).mkdir(parents=True, exist_ok=True)
    return stores


def stop_services(config: PipelineConfig, state_dir: Path | None = None) -> list[str]:
    """Stop every process recorded in services.json; one line per process, data left in place."""
    root = state_root(config, state_dir)
    layout = StateLayout(root)
    if not layout.record_path.exists():
        return [f"nothing to stop: {layout.record_path} does not exist"]
    lines: list[str] = []
    with state_lock(root, config.services.start_timeout_s):
        record = load_record(root) or ServicesRecord()
        for name, recorded in record.processes.items():
            if process.stop(recorded.pid, recorded.marker):
                lines.append(f"{name}: stopped (pid {recorded.pid})")
            else:
                lines.append(f"{name}: was not running (pid {recorded.pid})")
            layout.pid_path(name).unlink(missing_ok=True)
        record.state = "stopped"
        save_record(root, record)
    lines.append(f"data kept in {root}")
    return lines


def services_status(config: PipelineConfig, state_dir: Path | None = None) -> ServicesStatus:
    """Check every endpoint now: configured ones, else those recorded in services.json."""
    root = state_root(config, state_dir)
    record = load_record(root)
    urls = configured_endpoints(config, record, running_only=False)
    checks = endpoint_checks(config)
    configured = config.endpoints.model_dump()
    services: dict[str, EndpointStatus] = {}
    for name in ENDPOINT_NAMES:
        url = urls[name]
        if url is None:
            services[name] = EndpointStatus(
                url=None,
                answering=False,
                error=f"not configured: set endpoints.{name} or run `marketstream services start`",
            )
            continue
        error = checks[name](url)
        recorded_and_stopped = record is not None and record.state == "stopped"
        if error is not None and recorded_and_stopped and configured.get(name) is None:
            error = f"services stopped ({error})"
        # Printed by `services status`: a DSN's password is shown as ***.
        services[name] = EndpointStatus(url=redact_url(url), answering=error is None, error=error)
    return ServicesStatus(state_dir=root, services=services)


def _same_port_if_free(url: str | None) -> int:
    """The port a service had before (stable URLs across restarts) if still free, else any."""
    port = _port_of(url)
    return port if port is not None and process.port_is_free(port) else process.free_port()


def _port_of(url: str | None) -> int | None:
    if url is None:
        return None
    try:
        return urllib.parse.urlsplit(url).port
    except ValueError:
        return None


def _as_record(spawned: process.ServiceProcess) -> ProcessRecord:
    return ProcessRecord(pid=spawned.pid, marker=spawned.marker, log=str(spawned.log_path))


def _as_process(name: str, recorded: ProcessRecord) -> process.ServiceProcess:
    return process.ServiceProcess(
        name=name, pid=recorded.pid, marker=recorded.marker, log_path=Path(recorded.log)
    )
