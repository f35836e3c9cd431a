"""Which connections ingest opens: groups, per-connection stream limits, unsupported channels."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.config import PipelineConfig, load_config
from marketstream.errors import ConfigError
from marketstream.ingest.service import plan_connections

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "pipeline.yaml"
ONLY_BINANCE_AND_COINBASE = {
    "MARKETSTREAM_EXCHANGES__KRAKEN__ENABLED": "false",
    "MARKETSTREAM_EXCHANGES__OKX__ENABLED": "false",
    "MARKETSTREAM_EXCHANGES__BYBIT__ENABLED": "false",
}


def config(**environ: str) -> PipelineConfig:
    return load_config(SHIPPED, environ={**ONLY_BINANCE_AND_COINBASE, **environ})


def test_one_connection_per_exchange_by_default() -> None:
    plans = plan_connections(config())
    assert [p.exchange.name for p in plans] == ["binance", "binance-usdm", "coinbase"]
    assert plans[0].subscription.symbols == ("BTC-USDT", "ETH-USDT")


def test_groups_spread_exchanges_over_processes() -> None:
    cfg = config(
        MARKETSTREAM_EXCHANGES__BINANCE__GROUP="fast",
        MARKETSTREAM_EXCHANGES__BINANCE_USDM__GROUP="fast",
    )
    assert [p.exchange.name for p in plan_connections(cfg, group="fast")] == [
        "binance",
        "binance-usdm",
    ]
    assert [p.exchange.name for p in plan_connections(cfg, group="default")] == ["coinbase"]
    with pytest.raises(
        ConfigError, match=r"no enabled exchange in group 'slow'.*'default', 'fast'"
    ):
        plan_connections(cfg, group="slow")


def test_symbols_beyond_the_stream_limit_open_more_connections() -> None:
    symbols = [f"C{i}-USDT-PERP" for i in range(90)]
    cfg = config(
        MARKETSTREAM_EXCHANGES__BINANCE_USDM__SYMBOLS=f"[{', '.join(symbols)}]",
        MARKETSTREAM_EXCHANGES__BINANCE_USDM__CHANNELS="[trades, quotes, candles, books, funding]",
    )
    usdm = [p for p in plan_connections(cfg) if p.exchange.name == "binance-usdm"]
    per_connection = 200 // 5  # futures: 200 streams per connection, 5 channels per symbol
    assert [len(p.subscription.symbols) for p in usdm] == [per_connection, per_connection, 10]
    assert [s for p in usdm for s in p.subscription.symbols] == symbols


def test_a_channel_the_exchange_does_not_offer_is_a_config_error() -> None:
    cfg = config(MARKETSTREAM_EXCHANGES__COINBASE__CHANNELS="[trades, candles]")
    with pytest.raises(ConfigError, match="coinbase does not offer candles over WebSocket"):
        plan_connections(cfg)
