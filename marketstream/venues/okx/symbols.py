"""OKX's name and instrument ids: `BTC-USDT` (spot), `BTC-USDT-SWAP` (perpetual swap).

Instrument ids name their market, so a frame alone names its normalized symbol.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.instruments import SYMBOL_RE, parse_symbol
from marketstream.venues.base.mapper import FrameError

NAME: Final = "okx"


def native_symbol(symbol: str) -> str:
    """BTC-USDT -> BTC-USDT, BTC-USDT-PERP -> BTC-USDT-SWAP."""
    instrument = parse_symbol(symbol)
    swap = "-SWAP" if instrument.perp else ""
    return f"{instrument.base}-{instrument.quote}{swap}"


def normalized_symbol(inst_id: str) -> str:
    """BTC-USDT -> BTC-USDT, BTC-USDT-SWAP -> BTC-USDT-PERP; futures and options are refused."""
    parts = inst_id.split("-")
    if len(parts) == 2:
        symbol = inst_id
    elif len(parts) == 3 and parts[2] == "SWAP":
        symbol = f"{parts[0]}-{parts[1]}-PERP"
    else:
        raise FrameError(
            f"instId {inst_id!r} is not supported: only spot (BTC-USDT) and perpetual swaps "
            "(BTC-USDT-SWAP), not dated futures or options"
        )
    if SYMBOL_RE.match(symbol) is None:
        raise FrameError(f"instId {inst_id!r} is not an OKX spot or swap instrument id")
    return symbol
