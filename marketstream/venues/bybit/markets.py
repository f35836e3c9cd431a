"""Bybit v5's two public markets: spot (`<base>/spot`) and USDT linear perpetuals (`<base>/linear`).

The endpoints share one topic namespace: `publicTrade.BTCUSDT` is the spot pair on one and
the perpetual on the other, so the market comes from the configured symbols (live) or from
the recorded URL (offline), never from a frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import parse_symbol
from marketstream.venues.base.mapper import FrameError
from marketstream.venues.base.symbols import split_symbol

NAME: Final = "bybit"


def _linear_native_to_symbol(native: str) -> str:
    """BTCUSDT -> BTC-USDT-PERP; the linear endpoint's other contracts are refused by name."""
    if native.endswith("PERP"):
        raise FrameError(f"symbol {native!r}: USDC perpetuals are not supported")
    if "-" in native:
        raise FrameError(f"symbol {native!r}: dated futures are not supported")
    return split_symbol(native, True)


def _spot_native_to_symbol(native: str) -> str:
    return split_symbol(native, False)


@dataclass(frozen=True, slots=True)
class Market:
    """What differs between the spot and the linear endpoint."""

    name: str  # also the last part of the endpoint's path
    perp: bool
    to_symbol: Callable[[str], str]  # native -> normalized, for symbols not configured
    topics_per_request: int  # spot accepts at most 10 args per subscribe request


SPOT: Final = Market("spot", False, _spot_native_to_symbol, 10)
LINEAR: Final = Market("linear", True, _linear_native_to_symbol, 100)
MARKETS: Final[Mapping[str, Market]] = MappingProxyType({"spot": SPOT, "linear": LINEAR})


def market_of(symbols: Sequence[str]) -> Market:
    """The one market of these symbols; one connection cannot serve both."""
    kinds = {parse_symbol(symbol).perp for symbol in symbols}
    if len(kinds) != 1:
        found = "no symbols" if not kinds else f"spot and perpetual symbols {list(symbols)}"
        raise ConfigError(
            f"{NAME}: one connection serves either spot or perpetual symbols, got {found}: "
            "split the subscription by market first"
        )
    return LINEAR if kinds.pop() else SPOT


def market_of_url(url: str) -> Market | None:
    """The market whose endpoint `url` is (its path's last part), None for another URL."""
    return MARKETS.get(urlsplit(url).path.rstrip("/").rpartition("/")[2])
