"""Names shared by every part: exchanges, channels and the normalized instrument symbol."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

Exchange = Literal["binance", "binance-usdm", "coinbase", "kraken", "okx", "bybit"]
EXCHANGES: Final[tuple[str, ...]] = get_args(Exchange)

# A channel is what a connector subscribes to; each maps to one record type and one stream.
Channel = Literal["trades", "quotes", "candles", "books", "funding"]
CHANNELS: Final[tuple[str, ...]] = get_args(Channel)

SYMBOL_RE: Final = re.compile(r"^(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)(?P<perp>-PERP)?$")


@dataclass(frozen=True, slots=True)
class Instrument:
    """A normalized instrument: `BASE-QUOTE` for spot, `BASE-QUOTE-PERP` for perpetual swaps."""

    base: str
    quote: str
    perp: bool

    @property
    def symbol(self) -> str:
        return f"{self.base}-{self.quote}{'-PERP' if self.perp else ''}"


def parse_symbol(symbol: str) -> Instrument:
    """Split a normalized symbol; ValueError names the symbol and the expected form."""
    match = SYMBOL_RE.match(symbol)
    if match is None:
        raise ValueError(
            f"symbol {symbol!r} is not normalized: expected BASE-QUOTE or BASE-QUOTE-PERP "
            "in upper case, e.g. BTC-USDT or BTC-USDT-PERP"
        )
    return Instrument(match["base"], match["quote"], match["perp"] is not None)
