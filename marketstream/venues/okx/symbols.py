"""OKX's name and instrument ids: `BTC-USDT` (spot), `BTC-USDT-SWAP` (perpetual swap),
`BTC-USD-220527` (future expiring 2022-05-27, UTC).

Instrument ids name their market, so a frame alone names its normalized symbol; the mapper
prefers the instrument metadata (`instruments.py`) and falls back to these rules.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.instruments import SYMBOL_RE, parse_symbol
from marketstream.venues.base.mapper import FrameError

NAME: Final = "okx"


def native_symbol(symbol: str) -> str:
    """BTC-USDT -> BTC-USDT, BTC-USDT-PERP -> BTC-USDT-SWAP, BTC-USD-20220527 -> BTC-USD-220527."""
    instrument = parse_symbol(symbol)
    if instrument.perp:
        return f"{instrument.base}-{instrument.quote}-SWAP"
    if instrument.expiry is not None:
        return f"{instrument.base}-{instrument.quote}-{instrument.expiry[2:]}"
    return f"{instrument.base}-{instrument.quote}"


def normalized_symbol(inst_id: str) -> str:
    """BTC-USDT -> BTC-USDT, BTC-USDT-SWAP -> BTC-USDT-PERP, BTC-USD-220527 ->
    BTC-USD-20220527; options and other products are refused."""
    parts = inst_id.split("-")
    if len(parts) == 2:
        symbol = inst_id
    elif len(parts) == 3 and parts[2] == "SWAP":
        symbol = f"{parts[0]}-{parts[1]}-PERP"
    elif len(parts) == 3 and len(parts[2]) == 6 and parts[2].isascii() and parts[2].isdigit():
        symbol = f"{parts[0]}-{parts[1]}-20{parts[2]}"
    else:
        raise FrameError(
            f"instId {inst_id!r} is not supported: expected spot (BTC-USDT), a perpetual swap "
            "(BTC-USDT-SWAP) or a dated future (BTC-USD-220527), not an option"
        )
    if SYMBOL_RE.match(symbol) is None:
        raise FrameError(f"instId {inst_id!r} is not an OKX spot, swap or future instrument id")
    return symbol
