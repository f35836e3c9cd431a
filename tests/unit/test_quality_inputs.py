"""The quality report's inputs shared by the CLI and the API (`quality.inputs`)."""

from __future__ import annotations

import pytest

from marketstream.config import PipelineConfig, load_config
from marketstream.errors import ServiceError
from marketstream.quality.inputs import (
    NS_PER_DAY,
    configured_instruments,
    dead_letters,
    horizon_notes,
)
from tests.integration.endpoints import CONFIG_FILE

NOW = 1_800_000_000 * 10**9


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return load_config(CONFIG_FILE, environ={})


def test_configured_instruments_are_the_enabled_ones_with_trades(config: PipelineConfig) -> None:
    expected = configured_instruments(config)
    assert expected
    for exchange, symbol in expected:
        settings = config.enabled_exchanges()[exchange]
        assert "trades" in settings.channels
        assert symbol in settings.symbols


def test_a_note_only_for_a_range_before_the_hot_horizon(config: PipelineConfig) -> None:
    horizon = NOW - config.horizons.hot_days * NS_PER_DAY
    assert horizon_notes(config, horizon, NOW) == []
    (note,) = horizon_notes(config, horizon - 1, NOW)
    assert f"horizons.hot_days = {config.horizons.hot_days}" in note


def test_dead_letters_without_redis_are_a_note_not_a_failure() -> None:
    def no_endpoint() -> str:
        raise ServiceError("no Redis recorded in services.json")

    notes: list[str] = ["earlier"]
    assert dead_letters(no_endpoint, 0, NOW, None, notes) is None
    assert notes == ["earlier", "dead letters n/a: no Redis recorded in services.json"]
