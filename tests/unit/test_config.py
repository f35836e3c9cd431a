"""Configuration: the shipped file is valid; env overrides win; errors name key and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from marketstream.config import DEFAULT_CONFIG, load_config
from marketstream.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "pipeline.yaml"


def test_shipped_config_is_valid() -> None:
    config = load_config(SHIPPED, environ={})
    assert config.horizons.hot_days == 7
    assert config.horizons.warm_days == 365
    assert "binance" in config.enabled_exchanges()


def test_environment_overrides_nested_keys() -> None:
    config = load_config(
        SHIPPED,
        environ={
            "MARKETSTREAM_HORIZONS__HOT_DAYS": "3",
            "MARKETSTREAM_EXCHANGES__BINANCE_USDM__ENABLED": "false",
            "MARKETSTREAM_EXCHANGES__BINANCE__SYMBOLS": "[SOL-USDT]",
            "MARKETSTREAM_ENDPOINTS__REDIS": "redis://10.0.0.5:6379/0",
            "MARKETSTREAM_RECORDINGS": "/not/a/config/key",
        },
    )
    assert config.horizons.hot_days == 3
    assert "binance-usdm" not in config.enabled_exchanges()
    assert config.exchanges["binance"].symbols == ("SOL-USDT",)
    assert config.endpoints.redis == "redis://10.0.0.5:6379/0"


def test_config_path_from_environment(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(SHIPPED.read_text().replace("hot_days: 7", "hot_days: 2"))
    assert load_config(environ={"MARKETSTREAM_CONFIG": str(file)}).horizons.hot_days == 2


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"MARKETSTREAM_HORIZONS__HOT_DAYS": "abc"},
            "environment MARKETSTREAM_HORIZONS__HOT_DAYS: horizons.hot_days: value 'abc': "
            "expected a valid integer",
        ),
        ({"MARKETSTREAM_HORIZONS__HOTDAYS": "3"}, "horizons.hotdays: unknown key"),
        (
            {"MARKETSTREAM_HORIZONS__WARM_DAYS": "5"},
            "horizons: expected warm_days \\(5\\) greater than hot_days \\(7\\)",
        ),
        (
            {"MARKETSTREAM_EXCHANGES__BINANCE__SYMBOLS": "[btcusdt]"},
            "exchanges.binance.symbols.0: value 'btcusdt': symbol 'btcusdt' is not normalized",
        ),
        (
            {"MARKETSTREAM_EXCHANGES__COINBASE__CHANNELS": "[ticker]"},
            "exchanges.coinbase.channels.0: value 'ticker': expected 'trades', 'quotes'",
        ),
        (
            {"MARKETSTREAM_ENDPOINTS__CLICKHOUSE": "localhost:8123"},
            "endpoints.clickhouse: value 'localhost:8123': expected a URL starting with chdb://",
        ),
        ({"MARKETSTREAM_EXCHANGES__FTX__ENABLED": "true"}, "exchanges.ftx"),
        (
            {"MARKETSTREAM_ARCHIVE__SCHEDULE_UTC": "25:00"},
            "archive.schedule_utc: value '25:00': expected String should match pattern",
        ),
        (
            {"MARKETSTREAM_EXCHANGES__COINBASE__CHANNELS": "[funding]"},
            "coinbase: the funding channel needs at least one -PERP or dated-future symbol",
        ),
        (  # a writer told to serve no known exchange would run and write nothing
            {"MARKETSTREAM_HOT__EXCHANGES": '["nosuch"]'},
            "hot.exchanges.0: value 'nosuch': expected 'binance', 'binance-usdm'",
        ),
        (  # QuestDB ignores a variable it has no setting for: the key's shape is checked here
            {"MARKETSTREAM_SERVICES__QUESTDB__SERVER_CONF": '{"SHARED_WORKER_COUNT": 2}'},
            "services.questdb.server_conf: 'SHARED_WORKER_COUNT' is not a QuestDB server.conf "
            "key: expected lowercase words joined by dots",
        ),
        (  # and the value is never echoed: it may be a password
            {"MARKETSTREAM_SERVICES__QUESTDB__SERVER_CONF": '{"pg.password": ["s3cret"]}'},
            "services.questdb.server_conf: the value of 'pg.password' must be a boolean, an "
            "integer or a string$",
        ),
    ],
)
def test_wrong_values_name_key_value_and_expectation(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(SHIPPED, environ=environ)
    assert "\n" not in str(caught.value)


def test_an_unquoted_time_from_the_environment_is_the_time_written() -> None:
    """YAML 1.1 reads 02:30 as the base-60 number 150; the schedule takes it back as 02:30."""
    config = load_config(SHIPPED, environ={"MARKETSTREAM_ARCHIVE__SCHEDULE_UTC": "02:30"})
    assert config.archive.schedule_utc == "02:30"


def test_errors_in_the_file_name_the_file(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(SHIPPED.read_text().replace("hot_days: 7", "hot_days: -1"))
    with pytest.raises(ConfigError, match=f"config file {file}: horizons.hot_days: value -1"):
        load_config(file, environ={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found: pass --config FILE or set MARKETSTREAM_CONFIG"),
        ("exchanges: [unclosed", "line 1: not valid YAML"),
        ("- a list", "expected a mapping of sections"),
    ],
)
def test_unusable_files(tmp_path: Path, content: str | None, message: str) -> None:
    file = tmp_path / "c.yaml"
    if content is not None:
        file.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(file, environ={})


def test_the_shipped_config_reads_the_same_through_libyaml_as_through_pure_python() -> None:
    """Commands read the configuration with libyaml's parser: nothing in the shipped file may
    parse differently there (times, octal-looking values, anchors)."""
    text = (Path(__file__).resolve().parents[2] / DEFAULT_CONFIG).read_text(encoding="utf-8")
    assert yaml.__with_libyaml__  # PyYAML's wheels carry it; without, the faster path is gone
    assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.safe_load(text)


@pytest.mark.parametrize("value", ['["s3cret"]', "1.5", '{"x": "s3cret"}'])
def test_a_questdb_setting_of_the_wrong_type_is_refused_without_its_value(value: str) -> None:
    environ = {"MARKETSTREAM_SERVICES__QUESTDB__SERVER_CONF": f'{{"pg.password": {value}}}'}
    with pytest.raises(ConfigError, match=r"the value of 'pg\.password' must be") as caught:
        load_config(SHIPPED, environ=environ)
    assert "s3cret" not in str(caught.value)
    assert "1.5" not in str(caught.value)
