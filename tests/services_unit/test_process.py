"""Process handling and start-up errors of the local services, without starting a real one."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from marketstream.config import load_config
from marketstream.errors import ServiceError
from marketstream.services import process
from marketstream.services.questdb_server import (
    QuestDBPorts,
    install_questdb,
    java_binary,
    questdb_env,
)
from marketstream.services.redis_server import spawn_redis
from marketstream.tiers.clickhouse import chdb_path
from marketstream.tiers.questdb import QuestDBHttp
from tests.integration.endpoints import CONFIG_FILE

SH = "/bin/sh"


def _spawn_sh(tmp_path: Path, script: str) -> process.ServiceProcess:
    marker = str(tmp_path / "marker")  # $0 of the script: lands in the process's cmdline
    return process.spawn(
        "test-service",
        [SH, "-c", script, marker],
        marker=marker,
        log_path=tmp_path / "service.log",
        pid_path=tmp_path / "service.pid",
    )


def test_spawn_records_pid_and_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    spawned = _spawn_sh(tmp_path, "trap '' TERM; echo ready; while :; do sleep 0.05; done")
    assert process.read_pid(tmp_path / "service.pid") == spawned.pid
    assert process.is_ours(spawned.pid, spawned.marker)
    assert process.stop(spawned.pid, spawned.marker, term_timeout_s=0.3) is True
    assert not process.is_running(spawned.pid)
    assert process.stop(spawned.pid, spawned.marker) is False  # already gone: nothing to do


def test_a_pid_with_another_marker_is_not_ours(tmp_path: Path) -> None:
    spawned = _spawn_sh(tmp_path, "sleep 30")
    try:
        process.wait_until_answering(spawned, lambda: None, 5)
        assert process.is_ours(spawned.pid, spawned.marker)
        assert not process.is_ours(spawned.pid, str(tmp_path / "other"))
        assert process.stop(spawned.pid, str(tmp_path / "other")) is False  # left alone
        assert process.is_running(spawned.pid)
    finally:
        process.stop(spawned.pid, spawned.marker)


def test_a_service_that_exits_during_start_reports_its_log(tmp_path: Path) -> None:
    spawned = _spawn_sh(tmp_path, "echo 'FATAL: cannot open data dir' >&2; exit 3")
    with pytest.raises(ServiceError, match=r"exited during start.*FATAL: cannot open data dir"):
        process.wait_until_answering(spawned, lambda: "not yet", 30)


def test_a_service_that_never_answers_is_stopped(tmp_path: Path) -> None:
    spawned = _spawn_sh(tmp_path, "sleep 30")
    with pytest.raises(ServiceError, match=r"did not answer within 0.3 s \(still loading\)"):
        process.wait_until_answering(spawned, lambda: "still loading", 0.3)
    assert not process.is_running(spawned.pid)


def test_free_port_and_port_in_use() -> None:
    with socket.socket() as listener:
        listener.bind((process.LOOPBACK, 0))
        listener.listen()
        busy = listener.getsockname()[1]
        assert not process.port_is_free(busy)
        assert process.tcp_error(process.LOOPBACK, busy) is None
    assert process.port_is_free(process.free_port())


def test_missing_redis_server_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match="redis-server not found: install Debian's"):
        spawn_redis(
            tmp_path / "redis",
            port=process.free_port(),
            log_path=tmp_path / "l",
            pid_path=tmp_path / "p",
        )


def test_redis_port_in_use_is_refused_before_spawning(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind((process.LOOPBACK, 0))
        listener.listen()
        busy = listener.getsockname()[1]
        with pytest.raises(ServiceError, match=f"port {process.LOOPBACK}:{busy} is in use"):
            spawn_redis(
                tmp_path / "redis", port=busy, log_path=tmp_path / "l", pid_path=tmp_path / "p"
            )


def test_missing_java_says_install_openjdk_17(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match=r"^java not found: install OpenJDK 17"):
        java_binary()


def test_questdb_jar_with_the_wrong_sha256_is_refused(tmp_path: Path) -> None:
    services = load_config(CONFIG_FILE, environ={}).services
    services = services.model_copy(update={"cache_dir": tmp_path})
    version = services.questdb.version
    jar = tmp_path / "m2/org/questdb/questdb" / version / f"questdb-{version}.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"not the release")
    actual = hashlib.sha256(b"not the release").hexdigest()
    with pytest.raises(
        ServiceError, match=f"has sha256 {actual}, expected {services.questdb.sha256}"
    ):
        install_questdb(services)


def test_questdb_install_without_mvn_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = load_config(CONFIG_FILE, environ={}).services
    services = services.model_copy(update={"cache_dir": tmp_path / "cache"})
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.m2 copy to fall back on
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match=r"^mvn not found: install Maven"):
        install_questdb(services)


def test_client_addresses_are_checked() -> None:
    assert QuestDBHttp("http://127.0.0.1:9000/").sender_conf() == "http::addr=127.0.0.1:9000;"
    with pytest.raises(ServiceError, match="expected http://host:port"):
        QuestDBHttp("tcp://127.0.0.1:9009")
    assert chdb_path("chdb:///var/lib/ch") == Path("/var/lib/ch")
    with pytest.raises(ServiceError, match="three slashes"):
        chdb_path("chdb://relative/path")


def test_questdb_settings_become_qdb_variables_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """server.conf keys as QuestDB reads them; a QDB_ variable the user set is kept; the
    ports, which our endpoints depend on, are ours whatever either says."""
    monkeypatch.setenv("QDB_SHARED_WORKER_SLEEP_THRESHOLD", "5000")
    monkeypatch.setenv("QDB_HTTP_BIND_TO", "0.0.0.0:1")
    settings: dict[str, bool | int | str] = {
        "shared.worker.sleep.threshold": 200,
        "wal.apply.worker.nap.threshold": 100,
        "cairo.wal.enabled.default": True,
        "http.bind.to": "0.0.0.0:2",
    }
    env = questdb_env(QuestDBPorts(9100, 9101, 9102), "ERROR", settings)
    assert env["QDB_SHARED_WORKER_SLEEP_THRESHOLD"] == "5000"
    assert env["QDB_WAL_APPLY_WORKER_NAP_THRESHOLD"] == "100"
    assert env["QDB_CAIRO_WAL_ENABLED_DEFAULT"] == "true"
    assert env["QDB_HTTP_BIND_TO"] == "127.0.0.1:9100"
