"""The state directory of local services: its layout, `services.json`, and endpoint resolution.

`services.json` is how later commands find what `marketstream services start` started: the
endpoints it serves and the pids to stop. An endpoint set in the configuration (file or
environment) always wins over the recorded one, so a user can point a tier elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from marketstream.config import PipelineConfig
from marketstream.errors import ServiceError
from marketstream.retry import wait_for
from marketstream.services.process import ProcessFiles

ENDPOINT_NAMES = ("redis", "questdb_http", "questdb_pg", "questdb_ilp", "clickhouse", "cold")
RECORD_VERSION = 1
LOCK_POLL_S = 0.1

RunState = Literal["running", "stopped"]


@dataclass(frozen=True)
class StateLayout:
    """Where each local service keeps its data, log and pid file under one state directory."""

    root: Path

    @property
    def record_path(self) -> Path:
        return self.root / "services.json"

    @property
    def lock_path(self) -> Path:
        return self.root / "services.lock"

    def data_dir(self, service: str) -> Path:
        """`redis`, `questdb`, `clickhouse` (the engine directory) or `cold`."""
        return self.root / service

    def log_path(self, service: str) -> Path:
        return self.root / "logs" / f"{service}.log"

    def pid_path(self, service: str) -> Path:
        return self.root / "run" / f"{service}.pid"

    def process_files(self, service: str) -> ProcessFiles:
        """The log and pid file of a spawned service, as the `spawn_*` functions take them."""
        return ProcessFiles(log_path=self.log_path(service), pid_path=self.pid_path(service))


def state_root(config: PipelineConfig, state_dir: Path | None) -> Path:
    """The absolute state directory: the argument, else services.state_dir (relative to cwd)."""
    return Path(state_dir if state_dir is not None else config.services.state_dir).resolve()


@dataclass(frozen=True)
class ProcessRecord:
    """A process we started: the pid, and the argument that proves a pid is still that one."""

    pid: int
    marker: str
    log: str


@dataclass
class ServicesRecord:
    """The content of services.json."""

    state: RunState = "stopped"
    updated_at: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"version": RECORD_VERSION, **asdict(self)}, indent=2) + "\n"


def load_record(root: Path) -> ServicesRecord | None:
    """The services.json under root, or None if there is none."""
    path = StateLayout(root).record_path
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{path} cannot be read ({exc}): delete it and start again") from None
    try:
        if raw.get("version") != RECORD_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {RECORD_VERSION}")
        state = raw["state"]
        if state not in ("running", "stopped"):
            raise ValueError(f"state {state!r}")
        return ServicesRecord(
            state=state,
            updated_at=str(raw.get("updated_at", "")),
            endpoints={str(k): str(v) for k, v in raw.get("endpoints", {}).items()},
            processes={
                str(name): ProcessRecord(pid=int(p["pid"]), marker=str(p["marker"]), log=p["log"])
                for name, p in raw.get("processes", {}).items()
            },
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ServiceError(
            f"{path} is not a services record ({exc}): stop the services by hand and delete it"
        ) from None


def save_record(root: Path, record: ServicesRecord) -> None:
    """Write services.json atomically, so that a reader never sees half a file."""
    record.updated_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path = StateLayout(root).record_path
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(record.to_json(), encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def state_lock(root: Path, timeout_s: float) -> Iterator[None]:
    """Hold the state directory's lock, so that two `start`s never start two of a service."""
    root.mkdir(parents=True, exist_ok=True)
    path = StateLayout(root).lock_path
    with path.open("a") as lock:

        def taken() -> bool:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not wait_for(taken, timeout_s, LOCK_POLL_S):
            raise ServiceError(
                f"another `marketstream services` command holds {path} (waited {timeout_s:g} s)"
            )
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class ResolvedEndpoints:
    """Every endpoint the pipeline needs, each from the configuration or services.json."""

    redis: str
    questdb_http: str
    questdb_pg: str
    questdb_ilp: str
    clickhouse: str
    cold: str


def configured_endpoints(
    config: PipelineConfig, record: ServicesRecord | None, *, running_only: bool
) -> dict[str, str | None]:
    """Each endpoint's URL: the configured one, else the recorded one, else None."""
    recorded: Mapping[str, str] = {}
    if record is not None and (record.state == "running" or not running_only):
        recorded = record.endpoints
    configured = config.endpoints.model_dump()
    return {name: configured.get(name) or recorded.get(name) for name in ENDPOINT_NAMES}


def require_endpoint(config: PipelineConfig, state_dir: Path | None, name: str) -> str:
    """One endpoint (config and environment first, then services.json), or a clear error."""
    url = configured_endpoints(
        config, load_record(state_root(config, state_dir)), running_only=True
    )[name]
    if url is None:
        raise ServiceError(
            f"no {name} endpoint: set endpoints.{name} or run `marketstream services start`"
        )
    return url


def resolve_endpoints(config: PipelineConfig, state_dir: Path | None) -> ResolvedEndpoints:
    """The endpoints to connect to; ServiceError naming the first one that is nowhere."""
    record = load_record(state_root(config, state_dir))
    urls = configured_endpoints(config, record, running_only=True)
    resolved: dict[str, str] = {}
    for name in ENDPOINT_NAMES:
        url = urls[name]
        if url is None:
            raise ServiceError(
                f"no {name} endpoint: set endpoints.{name} or run `marketstream services start`"
            )
        resolved[name] = url
    return ResolvedEndpoints(**resolved)


@dataclass(frozen=True)
class EndpointStatus:
    """One endpoint and whether it answered just now."""

    url: str | None
    answering: bool
    error: str | None = None


@dataclass(frozen=True)
class ServicesStatus:
    """What `services status` reports: every endpoint, in ENDPOINT_NAMES order."""

    state_dir: Path
    services: Mapping[str, EndpointStatus]

    @property
    def all_answering(self) -> bool:
        return all(status.answering for status in self.services.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "state_dir": str(self.state_dir),
            "services": {
                name: {"url": s.url, "answering": s.answering, "error": s.error}
                for name, s in self.services.items()
            },
        }

    def lines(self) -> list[str]:
        """One aligned line per endpoint: name, URL, and `answering` or why not."""
        name_width = max((len(name) for name in self.services), default=0)
        url_width = max((len(s.url or "-") for s in self.services.values()), default=0)
        return [
            f"{name:<{name_width}}  {s.url or '-':<{url_width}}  "
            + ("answering" if s.answering else f"NOT answering: {s.error}")
            for name, s in self.services.items()
        ]
