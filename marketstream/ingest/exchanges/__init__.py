"""The exchanges MarketStream connects to, by the name used in the configuration."""

from __future__ import annotations

from marketstream.errors import MarketStreamError
from marketstream.ingest.exchange import Exchange
from marketstream.ingest.exchanges.binance import BINANCE, BINANCE_USDM
from marketstream.ingest.exchanges.bybit import BYBIT
from marketstream.ingest.exchanges.coinbase import COINBASE
from marketstream.ingest.exchanges.kraken import KRAKEN
from marketstream.ingest.exchanges.okx import OKX

EXCHANGES: dict[str, Exchange] = {
    exchange.name: exchange for exchange in (BINANCE, BINANCE_USDM, BYBIT, COINBASE, KRAKEN, OKX)
}


def get_exchange(name: str) -> Exchange:
    """The exchange named `name`; a MarketStreamError lists the known names otherwise."""
    try:
        return EXCHANGES[name]
    except KeyError:
        raise MarketStreamError(
            f"unknown exchange {name!r}: expected one of {', '.join(EXCHANGES)}"
        ) from None


__all__ = ["EXCHANGES", "get_exchange"]
