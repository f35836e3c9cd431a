"""Native symbols written base and quote run together (`BTCUSDT`), as several venues do.

Joining is exact. Splitting is not done at all: where base and quote run together, no list of
quote assets tells them apart for every pair (ADAEUR is ADA-EUR, not AD-AEUR), so a native
name becomes a normalized symbol only through the venue's instrument metadata (or the
configured symbols). The market (spot or perpetual) is not in the name: the venue's endpoint
or configuration says it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from marketstream.schemas.instruments import parse_symbol


def joined_symbol(symbol: str) -> str:
    """BTC-USDT -> BTCUSDT, BTC-USDT-PERP -> BTCUSDT (the market tells spot from perpetual)."""
    instrument = parse_symbol(symbol)
    return f"{instrument.base}{instrument.quote}"


def expiry_day(expiry_ns: int) -> str:
    """The UTC day of a future's expiry, YYYYMMDD: its normalized symbol's suffix."""
    return datetime.fromtimestamp(expiry_ns // 1_000_000_000, UTC).strftime("%Y%m%d")
