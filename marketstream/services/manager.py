"""Start, stop and report the local services of one state directory (the `services` commands).

Only endpoints the configuration leaves unset are served locally: Redis, QuestDB and the warm
gateway (the one process that opens the ClickHouse engine directory, serving it over HTTP) as
background processes, cold storage as a directory. Starting is idempotent: a recorded process
that is still ours is reused.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from marketstream.config import PipelineConfig, redact_url
from marketstream.services import process
from marketstream.services.checks import clickhouse_error, endpoint_checks
from marketstream.services.gateway_process import GatewaySetup, WarmServer, spawn_warm_server
from marketstream.services.process import ProcessFiles
from marketstream.services.questdb_server import (
    QuestDBPorts,
    QuestDBServer,
    install_questdb,
    questdb_error,
    spawn_questdb,
)
from marketstream.services.redis_server import RedisServer, redis_error, spawn_redis
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
# Spawns a service, given the URLs it had before (to keep its ports) and its log and pid file.
Spawn = Callable[[Sequence[str | None], ProcessFiles], RedisServer | QuestDBServer | WarmServer]


@dataclass(frozen=True)
class _Local:
    """A service `start` runs here when the configuration names no endpoint for it."""

    name: str  # in services.json and the state directory
    label: str  # in errors
    endpoints: tuple[str, ...]  # what it serves, as services.json names them; the first is checked
    error: Callable[[str], str | None]  # None when the first endpoint answers, else why not


REDIS = _Local("redis", RedisServer.NAME, ("redis",), redis_error)
QUESTDB = _Local(
    "questdb", QuestDBServer.NAME, ("questdb_http", "questdb_pg", "questdb_ilp"), questdb_error
)
# The warm gateway on the engine directory, recorded as `clickhouse: http://...`.
WARM = _Local("clickhouse", WarmServer.NAME, ("clickhouse",), clickhouse_error)


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
            for local, spawn in _to_start(config, layout):
                waits.append(
                    _ensure(
                        local,
                        spawn,
                        layout=layout,
                        record=record,
                        endpoints=endpoints,
                        timeout_s=timeout_s,
                    )
                )
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


def _to_start(config: PipelineConfig, layout: StateLayout) -> list[tuple[_Local, Spawn]]:
    """The services the configuration leaves to run here, each with how to spawn it."""
    services = config.services
    to_start: list[tuple[_Local, Spawn]] = []
    if config.endpoints.redis is None:
        redis_dir = layout.data_dir(REDIS.name)
        to_start.append(
            (REDIS, lambda before, files: spawn_redis(redis_dir, port=_port(before), **files))
        )
    if not any(getattr(config.endpoints, name) for name in QUESTDB.endpoints):

        def questdb(before: Sequence[str | None], files: ProcessFiles) -> QuestDBServer:
            ports = [_port_of(url) for url in before]
            last = None if None in ports else QuestDBPorts(*(p for p in ports if p is not None))
            root, jar = layout.data_dir(QUESTDB.name), install_questdb(services)
            return spawn_questdb(
                jar, root, ports=QuestDBPorts.pick(last), settings=services.questdb, **files
            )

        to_start.append((QUESTDB, questdb))
    if config.endpoints.clickhouse is None:
        setup = GatewaySetup(
            # the cold directory exists by now: the gateway checks it at start
            cold=_local_stores(config, layout).get("cold", config.endpoints.cold),
            s3=config.s3,
            limits=services.warm_gateway,
        )
        engine_dir = layout.data_dir(WARM.name)
        to_start.append(
            (
                WARM,
                # a chdb:// DSN recorded before the gateway has no port: any free one then
                lambda before, files: spawn_warm_server(
                    engine_dir, port=_port(before), setup=setup, **files
                ),
            )
        )
    return to_start


def _ensure(
    local: _Local,
    spawn: Spawn,
    *,
    layout: StateLayout,
    record: ServicesRecord,
    endpoints: dict[str, str],
    timeout_s: float,
) -> Wait:
    """Reuse the recorded process of `local` if it is still ours, else spawn it; either way
    its endpoints go into `endpoints`, and the wait returned ends once it answers."""
    before = [record.endpoints.get(name) for name in local.endpoints]
    previous = record.processes.get(local.name)
    checked = before[0]
    if (
        previous is not None
        and checked is not None
        and process.is_ours(previous.pid, previous.marker)
    ):
        running = _as_process(local.label, previous)
        urls: Sequence[str | None] = before
    else:
        server = spawn(before, layout.process_files(local.name))
        record.processes[local.name] = _as_record(server.process)
        running, urls, checked = server.process, server.urls, server.urls[0]
    endpoints.update({name: url for name, url in zip(local.endpoints, urls, strict=True) if url})
    return lambda: process.wait_until_answering(running, lambda: local.error(checked), timeout_s)


def _local_stores(config: PipelineConfig, layout: StateLayout) -> dict[str, str]:
    """The cold storage directory, created when served locally."""
    stores: dict[str, str] = {}
    cold = config.endpoints.cold
    if cold is None:
        cold_dir = layout.data_dir("cold")
        cold_dir.mkdir(parents=True, exist_ok=True)
        stores["cold"] = str(cold_dir)
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


def _port(before: Sequence[str | None]) -> int:
    """The port a service had before (stable URLs across restarts) if still free, else any."""
    port = _port_of(before[0])
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
