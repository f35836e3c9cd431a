"""Coinbase Exchange's name, and its product ids: the normalized spot symbols themselves."""

from __future__ import annotations

from typing import Final

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import parse_symbol

NAME: Final = "coinbase"


def native_symbol(symbol: str) -> str:
    """The product id of a configured symbol: the symbol itself (spot only)."""
    if parse_symbol(symbol).perp:
        raise ConfigError(
            f"{NAME}: symbol {symbol!r} is a perpetual swap: Coinbase Exchange lists spot "
            "products like BTC-USD"
        )
    return symbol
