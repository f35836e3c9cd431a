"""services.json, endpoint resolution (configuration wins) and the status report's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.config import PipelineConfig, load_config
from marketstream.errors import ServiceError
from marketstream.services.manager import services_status, stop_services
from marketstream.services.state import (
    ENDPOINT_NAMES,
    EndpointStatus,
    ProcessRecord,
    RunState,
    ServicesRecord,
    ServicesStatus,
    StateLayout,
    load_record,
    resolve_endpoints,
    save_record,
)
from tests.integration.endpoints import CONFIG_FILE

RECORDED = {
    "redis": "redis://127.0.0.1:41001/0",
    "questdb_http": "http://127.0.0.1:41002",
    "questdb_pg": "postgresql://127.0.0.1:41003/qdb",
    "questdb_ilp": "tcp://127.0.0.1:41004",
    "clickhouse": "chdb:///srv/state/clickhouse",
    "cold": "/srv/state/cold",
}


def _config(**environ: str) -> PipelineConfig:
    return load_config(CONFIG_FILE, environ=environ)


def _record(tmp_path: Path, state: RunState = "running") -> Path:
    record = ServicesRecord(
        state=state,
        endpoints=dict(RECORDED),
        processes={"redis": ProcessRecord(pid=1, marker="/srv/state/redis", log="/x.log")},
    )
    save_record(tmp_path, record)
    return tmp_path


def test_recorded_endpoints_are_used_when_the_configuration_leaves_them_unset(
    tmp_path: Path,
) -> None:
    resolved = resolve_endpoints(_config(), _record(tmp_path))
    assert resolved.redis == RECORDED["redis"]
    assert resolved.clickhouse == RECORDED["clickhouse"]


def test_configuration_and_environment_win_over_services_json(tmp_path: Path) -> None:
    config = _config(
        MARKETSTREAM_ENDPOINTS__REDIS="redis://cache.example:6379/2",
        MARKETSTREAM_ENDPOINTS__COLD="s3://archive/marketstream",
    )
    resolved = resolve_endpoints(config, _record(tmp_path))
    assert resolved.redis == "redis://cache.example:6379/2"
    assert resolved.cold == "s3://archive/marketstream"
    assert resolved.questdb_http == RECORDED["questdb_http"]


def test_no_endpoint_anywhere_names_the_key_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as error:
        resolve_endpoints(_config(), tmp_path / "never-started")
    assert str(error.value) == (
        "no redis endpoint: set endpoints.redis or run `marketstream services start`"
    )


def test_stopped_services_offer_no_endpoints(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"^no redis endpoint"):
        resolve_endpoints(_config(), _record(tmp_path, state="stopped"))


def test_services_json_round_trip_and_corruption(tmp_path: Path) -> None:
    _record(tmp_path)
    record = load_record(tmp_path)
    assert record is not None
    assert record.endpoints == RECORDED
    assert record.processes["redis"].pid == 1
    StateLayout(tmp_path).record_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ServiceError, match=r"services\.json cannot be read"):
        load_record(tmp_path)


def test_status_shape_and_aligned_lines() -> None:
    status = ServicesStatus(
        state_dir=Path("/srv/state"),
        services={
            "redis": EndpointStatus("redis://127.0.0.1:41001/0", answering=True),
            "cold": EndpointStatus(None, answering=False, error="not configured"),
        },
    )
    assert not status.all_answering
    assert status.as_dict() == {
        "state_dir": "/srv/state",
        "services": {
            "redis": {"url": "redis://127.0.0.1:41001/0", "answering": True, "error": None},
            "cold": {"url": None, "answering": False, "error": "not configured"},
        },
    }
    assert status.lines() == [
        "redis  redis://127.0.0.1:41001/0  answering",
        "cold   -                          NOT answering: not configured",
    ]


def test_status_without_services_reports_every_endpoint_unconfigured(tmp_path: Path) -> None:
    cold = tmp_path / "cold"
    cold.mkdir()
    status = services_status(_config(MARKETSTREAM_ENDPOINTS__COLD=str(cold)), tmp_path)
    assert list(status.services) == list(ENDPOINT_NAMES)
    assert status.services["cold"] == EndpointStatus(str(cold), answering=True)
    assert status.services["redis"].error == (
        "not configured: set endpoints.redis or run `marketstream services start`"
    )
    assert not status.all_answering


def test_stop_without_services_json_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "absent"
    assert stop_services(_config(), state) == [
        f"nothing to stop: {state / 'services.json'} does not exist"
    ]
    assert not state.exists()
