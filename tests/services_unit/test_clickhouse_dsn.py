"""The ClickHouse DSN's password never reaches an error message or a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from marketstream.config import PipelineConfig, load_config, redact_url
from marketstream.errors import ServiceError
from marketstream.services import process
from marketstream.services.checks import clickhouse_error
from marketstream.services.manager import services_status
from marketstream.tiers import clickhouse

PASSWORD = "pw-s3cr3t-do-not-print"  # noqa: S105 - a dummy that must not be printed
CONFIG_FILE = Path(__file__).resolve().parents[2] / "configs" / "pipeline.yaml"


@pytest.fixture
def pipeline_config() -> PipelineConfig:
    return load_config(CONFIG_FILE, environ={})


def test_an_unreachable_clickhouse_is_named_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = process.free_port()  # nothing listens there
    dsn = f"http://marketstream:{PASSWORD}@{process.LOOPBACK}:{port}/default"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ServiceError) as error:
        clickhouse.connect(dsn, connect_timeout_s=2.0)
    assert str(error.value) == (
        f"ClickHouse at http://marketstream:***@{process.LOOPBACK}:{port}/default "
        "unreachable: Connection refused"
    )
    status = clickhouse_error(dsn)  # the error `services status` prints
    assert status is not None
    assert PASSWORD not in status
    assert PASSWORD not in caplog.text


def test_services_status_shows_a_configured_dsn_without_its_password(
    tmp_path: Path, pipeline_config: PipelineConfig
) -> None:
    dsn = f"http://marketstream:{PASSWORD}@{process.LOOPBACK}:{process.free_port()}/default"
    endpoints = pipeline_config.endpoints.model_copy(update={"clickhouse": dsn})
    config = pipeline_config.model_copy(update={"endpoints": endpoints})
    status = services_status(config, tmp_path)
    shown = status.services["clickhouse"]
    assert shown.url is not None
    assert shown.url.startswith("http://marketstream:***@")
    printed = "\n".join(status.lines()) + str(status.as_dict())
    assert PASSWORD not in printed


def test_an_invalid_dsn_is_named_without_its_password() -> None:
    with pytest.raises(ServiceError) as error:
        clickhouse.connect(f"tcp://user:{PASSWORD}@host:9000")
    assert PASSWORD not in str(error.value)
    assert "tcp://user:***@host:9000" in str(error.value)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("http://u:p%40ss@h:8123/db?x=1", "http://u:***@h:8123/db?x=1"),
        ("https://u:p@h", "https://u:***@h"),
        ("http://:p@h:1", "http://:***@h:1"),
        ("http://u@h:1", "http://u@h:1"),
        ("http://h:1", "http://h:1"),
        ("chdb:///var/lib/ch", "chdb:///var/lib/ch"),
    ],
)
def test_redact_hides_the_password_only(dsn: str, shown: str) -> None:
    assert redact_url(dsn) == shown
