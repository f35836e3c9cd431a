"""Native symbols written base and quote run together (`BTCUSDT`), as several venues do.

Joining is exact; splitting needs the quote assets, so a native symbol is split by the longest
known quote asset it ends in. The market (spot or perpetual) is not in the name: the venue's
endpoint or configuration says it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from marketstream.schemas.instruments import parse_symbol
from marketstream.venues.base.mapper import FrameError

# Quote assets a native symbol may end in; the longest match wins (BTCFDUSD is BTC-FDUSD).
# Only quotes that cannot be mistaken for the tail of a real pair are listed: AEUR would
# turn ADAEUR (ADA-EUR) into AD-AEUR, so it is left out.
QUOTE_ASSETS: Final = (
    "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "XRP", "TRX",
    "DOGE", "EUR", "TRY", "GBP", "AUD", "BRL", "RUB", "UAH", "ZAR", "NGN", "PLN", "RON", "ARS",
    "JPY", "MXN", "COP", "CZK", "IDRT", "BIDR", "BKRW", "BVND", "PAX", "UST", "VAI",
)  # fmt: skip
_QUOTES_BY_LENGTH: Final = tuple(
    (length, frozenset(q for q in QUOTE_ASSETS if len(q) == length))
    for length in sorted({len(q) for q in QUOTE_ASSETS}, reverse=True)
)


def joined_symbol(symbol: str) -> str:
    """BTC-USDT -> BTCUSDT, BTC-USDT-PERP -> BTCUSDT (the market tells spot from perpetual)."""
    instrument = parse_symbol(symbol)
    return f"{instrument.base}{instrument.quote}"


def split_symbol(native: str, perp: bool) -> str:
    """Split a native symbol by its longest known quote asset: NKNUSDT -> NKN-USDT; a
    derivative's BTCUSDT_210924 -> BTC-USDT-20210924. For REST URLs and tools without
    instrument metadata only: mappers name frames from the instrument list."""
    native, _, delivery = native.partition("_")  # Binance's quarterly BTCUSDT_210924
    if delivery and not (perp and len(delivery) == 6 and delivery.isdigit()):
        shown = f"{native}_{delivery}"
        raise FrameError(f"symbol {shown!r}: expected a delivery day YYMMDD after '_'")
    if delivery:
        return f"{split_symbol(native, False)}-20{delivery}"
    for length, quotes in _QUOTES_BY_LENGTH:
        if len(native) > length and native[-length:] in quotes:
            return f"{native[:-length]}-{native[-length:]}{'-PERP' if perp else ''}"
    raise FrameError(f"symbol {native!r} does not end in a known quote asset")


def expiry_day(expiry_ns: int) -> str:
    """The UTC day of a future's expiry, YYYYMMDD: its normalized symbol's suffix."""
    return datetime.fromtimestamp(expiry_ns // 1_000_000_000, UTC).strftime("%Y%m%d")
