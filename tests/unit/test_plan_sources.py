"""Which polled sources `ingest` runs, and the API key: from the environment only, sent as the
source's header, never shown."""

from __future__ import annotations

import pytest

from marketstream.config import PipelineConfig, load_config
from marketstream.errors import MarketStreamError
from marketstream.ingest.polling.plan import plan_sources
from tests.integration.endpoints import CONFIG_FILE

KEY = "sk-test-0123456789abcdef"


def _config(**sources: dict[str, object]) -> PipelineConfig:
    config = load_config(CONFIG_FILE, environ={})
    data = config.model_dump(mode="json")
    for name, changes in sources.items():
        data["sources"][name] |= changes
    return PipelineConfig.model_validate(data)


def test_the_shipped_config_polls_jupiter_keyless_and_leaves_birdeye_off() -> None:
    planned = plan_sources(_config(), environ={})
    assert [p.source.name for p in planned] == ["jupiter"]
    assert planned[0].base_url == "https://api.jup.ag"
    assert "x-api-key" not in {k.lower() for k in planned[0].headers}
    assert len(planned[0].config.symbols) == 15


def test_a_key_comes_from_the_named_variable_and_is_never_shown() -> None:
    planned = plan_sources(_config(), environ={"JUPITER_API_KEY": KEY})
    assert planned[0].headers["x-api-key"] == KEY
    assert KEY not in repr(planned[0])
    assert KEY not in repr(planned)


def test_a_source_that_needs_a_key_without_one_is_refused_naming_the_variable() -> None:
    config = _config(birdeye={"enabled": True})
    with pytest.raises(MarketStreamError, match=r"sources.birdeye: .* set the environment variable "
                       "BIRDEYE_API_KEY"):  # fmt: skip
        plan_sources(config, environ={})
    planned = plan_sources(config, environ={"BIRDEYE_API_KEY": KEY}, only=["birdeye"])
    assert planned[0].headers["X-API-KEY"] == KEY
    assert planned[0].headers["x-chain"] == "solana"


def test_an_unknown_source_lists_the_known_ones() -> None:
    with pytest.raises(MarketStreamError, match="expected one of jupiter, birdeye"):
        plan_sources(_config(), environ={}, only=["pyth"])


def test_a_group_selects_its_sources() -> None:
    config = _config(jupiter={"group": "defi"})
    assert [p.source.name for p in plan_sources(config, {}, group="defi")] == ["jupiter"]
    assert plan_sources(config, {}, group="default") == []


def test_a_cadence_the_credit_budget_cannot_carry_is_refused_at_start() -> None:
    """Birdeye: 15 tokens cost 27 compute units a request; every 60 s that is 1,166,400 CU in
    30 days, above a 1M budget, and within it every 90 s."""
    config = _config(birdeye={"enabled": True, "credits_per_month": 1_000_000})
    environ = {"BIRDEYE_API_KEY": KEY}
    expected = (
        r"sources\.birdeye: 15 tokens every 60 s cost 1,166,400 credits in 30 days, "
        r"above credits_per_month 1,000,000"
    )
    with pytest.raises(MarketStreamError, match=expected):
        plan_sources(config, environ, only=["birdeye"])
    slower = _config(birdeye={"enabled": True, "credits_per_month": 1_000_000, "cadence_s": 90})
    assert plan_sources(slower, environ, only=["birdeye"])[0].config.cadence_s == 90


def test_a_cadence_above_the_request_limit_is_refused_at_start() -> None:
    config = _config(jupiter={"cadence_s": 1})  # keyless max_rps 0.5
    with pytest.raises(MarketStreamError, match=r"sources\.jupiter: 15 tokens every 1 s take "
                       r"1 request\(s\) a tick, 1 a second, above max_rps 0.5"):  # fmt: skip
        plan_sources(config, environ={})
