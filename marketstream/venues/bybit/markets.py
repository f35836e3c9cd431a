"""Bybit v5's three public markets, each on its own endpoint: spot (`<base>/spot`), linear
contracts settled in USDT or USDC (`<base>/linear`) and inverse contracts settled in the base
coin (`<base>/inverse`).

The endpoints share one topic namespace: `publicTrade.BTCUSDT` is the spot pair on one and
the perpetual on the other, so the market comes from the configured symbols (live) or from
the recorded URL (offline), never from a frame. Which market a symbol trades on is in its
name: a derivative quoted in USD is inverse (Bybit's inverse contracts are all USD-quoted),
any other derivative linear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import SymbolParts, parse_symbol
from marketstream.schemas.records import InstrumentKind

NAME: Final = "bybit"
# Futures month codes, January first: an inverse future is BTCUSD + month + 2-digit year.
_MONTH_CODES: Final = "FGHJKMNQUVXZ"


@dataclass(frozen=True, slots=True)
class Market:
    """What differs between the endpoints."""

    name: str  # also the last part of the endpoint's path
    perp: bool  # a derivatives market (funding, liquidations, open interest)
    kinds: frozenset[InstrumentKind]  # the instrument kinds it lists
    topics_per_request: int  # spot accepts at most 10 args per subscribe request


SPOT: Final = Market("spot", False, frozenset({"spot"}), 10)
LINEAR: Final = Market("linear", True, frozenset({"linear_perpetual", "linear_future"}), 100)
INVERSE: Final = Market("inverse", True, frozenset({"inverse_perpetual", "inverse_future"}), 100)
MARKETS: Final[Mapping[str, Market]] = MappingProxyType(
    {"spot": SPOT, "linear": LINEAR, "inverse": INVERSE}
)


def market_of_symbol(symbol: str) -> Market:
    parts = parse_symbol(symbol)
    if not parts.derivative:
        return SPOT
    return INVERSE if parts.quote == "USD" else LINEAR


def market_of(symbols: Sequence[str]) -> Market:
    """The one market of these symbols; one connection cannot serve two."""
    markets = {market_of_symbol(symbol).name for symbol in symbols}
    if len(markets) != 1:
        found = "no symbols" if not markets else f"symbols of {sorted(markets)}: {list(symbols)}"
        raise ConfigError(
            f"{NAME}: one connection serves one market (spot, linear or inverse), got {found}: "
            "split the subscription by market first"
        )
    return MARKETS[markets.pop()]


def market_of_url(url: str) -> Market | None:
    """The market whose endpoint `url` is (its path's last part), None for another URL."""
    return MARKETS.get(urlsplit(url).path.rstrip("/").rpartition("/")[2])


def native(symbol: str) -> str:
    """Bybit's name of a normalized symbol, by Bybit's naming rules (exact, so subscriptions
    need no metadata): BTC-USDT BTCUSDT; BTC-USDT-PERP BTCUSDT; BTC-USDC-PERP BTCPERP;
    BTC-USD-PERP BTCUSD; BTC-USD-20230929 BTCUSDU23; BTC-USDC-20230929 BTC-29SEP23;
    BTC-USDT-20241227 BTCUSDT-27DEC24."""
    parts = parse_symbol(symbol)
    if parts.expiry is not None:
        return _dated_native(parts)
    if parts.perp and parts.quote == "USDC":
        return f"{parts.base}PERP"
    return f"{parts.base}{parts.quote}"


def _dated_native(parts: SymbolParts) -> str:
    assert parts.expiry is not None
    day = datetime.strptime(parts.expiry, "%Y%m%d").replace(tzinfo=UTC)
    if parts.quote == "USD":
        return f"{parts.base}USD{_MONTH_CODES[day.month - 1]}{day:%y}"
    suffix = f"{day:%d%b%y}".upper()
    if parts.quote == "USDC":
        return f"{parts.base}-{suffix}"
    return f"{parts.base}{parts.quote}-{suffix}"
