"""A local QuestDB: the pinned jar from Maven Central, run on the system's Java 17.

The jar is fetched with Maven into the repository's cache (`services.cache_dir`) and checked
against the sha256 in the configuration, so every machine runs the same verified release.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from marketstream.config import QuestDBService, ServicesConfig
from marketstream.errors import ServiceError
from marketstream.services.process import (
    LOOPBACK,
    ProcessFiles,
    ServiceProcess,
    find_executable,
    free_port,
    port_is_free,
    spawn,
    started,
)
from marketstream.tiers.questdb import QuestDBHttp

GROUP_PATH = Path("org", "questdb", "questdb")
JAVA_HINT = "install OpenJDK 17 (Debian: apt-get install openjdk-17-jre-headless)"
MVN_HINT = "install Maven (Debian: apt-get install maven) to fetch the QuestDB jar"
MIN_JAVA = 17
MVN_TIMEOUT_S = 600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class QuestDBPorts:
    http: int
    pg: int
    ilp: int

    @classmethod
    def pick(cls, previous: QuestDBPorts | None = None) -> QuestDBPorts:
        """The previous ports when all are still free (stable URLs across restarts), else new."""
        if previous is not None and all(
            port_is_free(p) for p in (previous.http, previous.pg, previous.ilp)
        ):
            return previous
        ports: list[int] = []
        while len(ports) < 3:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return cls(http=ports[0], pg=ports[1], ilp=ports[2])


@dataclass(frozen=True)
class QuestDBServer:
    process: ServiceProcess
    ports: QuestDBPorts
    NAME: ClassVar[str] = "QuestDB"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.http}"

    @property
    def pg_url(self) -> str:
        return f"postgresql://{LOOPBACK}:{self.ports.pg}/qdb"

    @property
    def ilp_url(self) -> str:
        return f"tcp://{LOOPBACK}:{self.ports.ilp}"

    @property
    def urls(self) -> tuple[str, ...]:
        """HTTP, PostgreSQL wire and ILP, in the order services.json names them."""
        return (self.http_url, self.pg_url, self.ilp_url)

    def answer_error(self) -> str | None:
        return questdb_error(self.http_url)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _jar_in(repository: Path, version: str) -> Path:
    return repository / GROUP_PATH / version / f"questdb-{version}.jar"


def _check_sha(jar: Path, pinned: QuestDBService) -> None:
    actual = _sha256(jar)
    if actual != pinned.sha256:
        raise ServiceError(
            f"QuestDB jar {jar} has sha256 {actual}, expected {pinned.sha256} "
            "(services.questdb.sha256): delete the file and run `marketstream services install`"
        )


def install_questdb(services: ServicesConfig) -> Path:
    """The verified jar of the pinned QuestDB in `<cache_dir>/m2`, fetched with mvn if missing.

    A matching jar already in the user's ~/.m2 is copied instead of downloaded again.
    """
    pinned = services.questdb
    repository = services.cache_dir.resolve() / "m2"
    jar = _jar_in(repository, pinned.version)
    if jar.is_file():
        _check_sha(jar, pinned)
        return jar
    user_jar = _jar_in(Path.home() / ".m2" / "repository", pinned.version)
    if user_jar.is_file() and _sha256(user_jar) == pinned.sha256:
        jar.parent.mkdir(parents=True, exist_ok=True)
        partial = jar.with_suffix(".jar.part")
        shutil.copyfile(user_jar, partial)
        os.replace(partial, jar)
        return jar
    _mvn_fetch(repository, pinned.version)
    if not jar.is_file():
        raise ServiceError(f"mvn finished but {jar} is missing")
    _check_sha(jar, pinned)
    return jar


def _mvn_fetch(repository: Path, version: str) -> None:
    mvn = find_executable("mvn", MVN_HINT)
    artifact = f"org.questdb:questdb:{version}"
    argv = [
        mvn, "-q", "-B", "-Dstyle.color=never",
        f"-Dmaven.repo.local={repository}",
        "dependency:get", f"-Dartifact={artifact}", "-Dtransitive=false",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"mvn did not fetch {artifact} within {MVN_TIMEOUT_S} s") from None
    if result.returncode != 0:
        raise ServiceError(
            f"mvn could not fetch {artifact} (exit {result.returncode}): "
            + _mvn_cause(result.stdout + result.stderr)
        )


def _mvn_cause(output: str) -> str:
    """Maven's first [ERROR] line says why; the ones after it are generic advice."""
    lines = [ANSI_ESCAPE.sub("", line).strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("[ERROR]") and line != "[ERROR]"]
    if errors:
        return errors[0].removeprefix("[ERROR]").strip()
    return " | ".join([line for line in lines if line][-10:]) or "no output"


def java_binary() -> str:
    """The `java` on PATH, checked to be Java 17 or newer (QuestDB 9 needs it)."""
    java = find_executable("java", JAVA_HINT)
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"{java} -version failed ({exc}): {JAVA_HINT}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise ServiceError(f"{java} -version printed no version: {JAVA_HINT}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" is Java 8
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise ServiceError(f"{java} is Java {major}; QuestDB needs {MIN_JAVA}+: {JAVA_HINT}")
    return java


def server_conf_env(settings: Mapping[str, bool | int | str]) -> dict[str, str]:
    """server.conf settings as the QDB_<KEY> variables QuestDB reads them from."""
    return {
        "QDB_" + key.upper().replace(".", "_"): (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
        for key, value in settings.items()
    }


def questdb_env(
    ports: QuestDBPorts, log_levels: str, server_conf: Mapping[str, bool | int | str]
) -> dict[str, str]:
    """QuestDB reads QDB_<key> variables as server.conf (and log.conf) overrides: the
    configured settings (a variable already in the environment wins), then loopback ports,
    no telemetry, the configured log levels."""
    return {
        **server_conf_env(server_conf),
        **os.environ,
        "QDB_HTTP_BIND_TO": f"{LOOPBACK}:{ports.http}",
        "QDB_PG_NET_BIND_TO": f"{LOOPBACK}:{ports.pg}",
        "QDB_LINE_TCP_NET_BIND_TO": f"{LOOPBACK}:{ports.ilp}",
        "QDB_HTTP_MIN_ENABLED": "false",
        "QDB_TELEMETRY_ENABLED": "false",
        "QDB_LOG_W_STDOUT_LEVEL": log_levels,
    }


def spawn_questdb(
    jar: Path,
    root: Path,
    *,
    ports: QuestDBPorts,
    settings: QuestDBService,
    log_path: Path,
    pid_path: Path,
) -> QuestDBServer:
    """Start QuestDB in the background with `settings`' JVM options, log levels and
    server.conf settings; `process.started` waits until it answers SQL."""
    java = java_binary()
    for name, port in (("http", ports.http), ("pg", ports.pg), ("ilp", ports.ilp)):
        if not port_is_free(port):
            raise ServiceError(f"{QuestDBServer.NAME}: {name} port {LOOPBACK}:{port} is in use")
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)  # ServerMain refuses a root that does not exist
    argv = [
        java, *settings.java_opts,
        "-p", str(jar), "-m", "io.questdb/io.questdb.ServerMain",
        "-d", str(root),
    ]  # fmt: skip
    process = spawn(
        QuestDBServer.NAME,
        argv,
        marker=str(root),
        log_path=log_path,
        pid_path=pid_path,
        env=questdb_env(ports, settings.log_levels, settings.server_conf),
    )
    return QuestDBServer(process=process, ports=ports)


def questdb_error(http_url: str) -> str | None:
    """None when QuestDB at http_url runs `SELECT 1`, else why not."""
    try:
        QuestDBHttp(http_url, timeout_s=2.0).exec("SELECT 1")
    except ServiceError as exc:
        return str(exc)
    return None


def start_questdb(
    services: ServicesConfig,
    root: Path,
    *,
    ports: QuestDBPorts,
    log_path: Path,
    pid_path: Path,
) -> QuestDBServer:
    """Install (if needed) and start QuestDB; return once it answers SQL over HTTP."""
    jar = install_questdb(services)
    files = ProcessFiles(log_path=log_path, pid_path=pid_path)
    server = spawn_questdb(
        jar,
        root,
        ports=ports,
        settings=services.questdb,
        **files,
    )
    return started(server, services.start_timeout_s)
