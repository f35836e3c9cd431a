"""The environment overlay read through pydantic-settings keeps the rules it always had:
no variable silently ignored, `null` is None, only `<SECTION>__<KEY>` names are keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.config import load_config, load_config_source
from marketstream.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "pipeline.yaml"


def test_a_misspelled_section_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"environment MARKETSTREAM_HORIZON__HOT_DAYS: horizon:"):
        load_config(SHIPPED, environ={"MARKETSTREAM_HORIZON__HOT_DAYS": "3"})


def test_null_clears_an_optional_key_and_hyphenated_exchanges_are_listed() -> None:
    config, source = load_config_source(
        SHIPPED,
        environ={
            "MARKETSTREAM_ENDPOINTS__REDIS": "null",
            "MARKETSTREAM_EXCHANGES__BINANCE_USDM__GROUP": "perps",
            "MARKETSTREAM_INGEST": "{book_depth: 7}",  # not a <SECTION>__<KEY> name: not a key
        },
    )
    assert config.endpoints.redis is None
    assert config.exchanges["binance-usdm"].group == "perps"
    assert config.ingest.book_depth == 25
    assert dict(source.overrides) == {
        "endpoints.redis": "MARKETSTREAM_ENDPOINTS__REDIS",
        "exchanges.binance-usdm.group": "MARKETSTREAM_EXCHANGES__BINANCE_USDM__GROUP",
    }
