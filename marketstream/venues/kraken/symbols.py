"""Kraken spot's name and symbols: `BTC/USD` (v2; v1 says `XBT/USD`) <-> `BTC-USD`."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import parse_symbol
from marketstream.venues.base.mapper import FrameError
from marketstream.venues.base.parsing import show

NAME: Final = "kraken"
# v1 names two assets the old way; v2 and every other venue say BTC and DOGE.
V1_ASSETS: Final[Mapping[str, str]] = MappingProxyType({"XBT": "BTC", "XDG": "DOGE"})


def native_symbol(symbol: str) -> str:
    """BTC-USD -> BTC/USD, the v2 name to subscribe with (spot only)."""
    instrument = parse_symbol(symbol)
    if instrument.perp:
        raise ConfigError(
            f"{NAME}: symbol {symbol!r} is a perpetual swap: Kraken spot lists pairs like BTC-USD"
        )
    return f"{instrument.base}/{instrument.quote}"


def normalized_symbol(native: str) -> str:
    """XBT/USD (v1) and BTC/USD (v2) -> BTC-USD."""
    base, slash, quote = native.partition("/")
    if not slash or not base or not quote:
        raise FrameError(f"symbol {show(native)} is not BASE/QUOTE")
    return f"{V1_ASSETS.get(base, base)}-{V1_ASSETS.get(quote, quote)}"
