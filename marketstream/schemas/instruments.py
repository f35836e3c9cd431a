"""Names shared by every part: exchanges, channels and the normalized symbol's grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

Exchange = Literal["binance", "binance-usdm", "coinbase", "kraken", "okx", "bybit"]
EXCHANGES: Final[tuple[str, ...]] = get_args(Exchange)
# Polled REST price sources (`sources/`): they own streams and price keys as exchanges do, and
# their records carry the source's name in the `exchange` column.
Source = Literal["jupiter", "birdeye"]
SOURCES: Final[tuple[str, ...]] = get_args(Source)
# Everything that can own a stream: a venue or a polled source.
Feed = Literal[Exchange, Source]
FEEDS: Final[tuple[str, ...]] = EXCHANGES + SOURCES

# A channel is what a connector subscribes to; each maps to one record type and one stream.
Channel = Literal[
    "trades", "quotes", "candles", "books", "funding", "liquidations", "open_interest"
]
CHANNELS: Final[tuple[str, ...]] = get_args(Channel)
# Channels only derivatives have: configuring one needs a perpetual or dated-future symbol.
DERIVATIVE_CHANNELS: Final = frozenset({"funding", "liquidations", "open_interest"})

SYMBOL_RE: Final = re.compile(
    r"^(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)(?:-(?P<perp>PERP)|-(?P<expiry>20[0-9]{6}))?$"
)


@dataclass(frozen=True, slots=True)
class SymbolParts:
    """A normalized symbol's parts: `BASE-QUOTE` for spot, `BASE-QUOTE-PERP` for perpetuals,
    `BASE-QUOTE-YYYYMMDD` for a future expiring that day (UTC).

    Whether a derivative is linear or inverse is not in the name: the instrument metadata says
    (`BTC-USD-PERP` on OKX is inverse, settled in BTC).
    """

    base: str
    quote: str
    perp: bool
    expiry: str | None = None  # YYYYMMDD

    @property
    def symbol(self) -> str:
        if self.perp:
            return f"{self.base}-{self.quote}-PERP"
        if self.expiry is not None:
            return f"{self.base}-{self.quote}-{self.expiry}"
        return f"{self.base}-{self.quote}"

    @property
    def derivative(self) -> bool:
        return self.perp or self.expiry is not None


def parse_symbol(symbol: str) -> SymbolParts:
    """Split a normalized symbol; ValueError names the symbol and the expected form."""
    match = SYMBOL_RE.match(symbol)
    if match is None:
        raise ValueError(
            f"symbol {symbol!r} is not normalized: expected BASE-QUOTE, BASE-QUOTE-PERP or "
            "BASE-QUOTE-YYYYMMDD in upper case, e.g. BTC-USDT, BTC-USDT-PERP or BTC-USD-20250328"
        )
    return SymbolParts(match["base"], match["quote"], match["perp"] is not None, match["expiry"])
