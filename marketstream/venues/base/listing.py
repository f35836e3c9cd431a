"""One instrument as an exchange's instrument list describes it, named by the normalized
grammar: every venue's `parse_instruments` ends here, so names and defaults agree."""

from __future__ import annotations

from marketstream.schemas.instruments import SYMBOL_RE, SymbolParts
from marketstream.schemas.records import Instrument, InstrumentKind
from marketstream.venues.base.symbols import expiry_day

_PERPETUALS = frozenset({"linear_perpetual", "inverse_perpetual"})


def listed(
    exchange: str,
    native: str,
    base: str,
    quote: str,
    *,
    read_ts_ns: int,
    tick_size: float,
    lot_size: float,
    status: str,
    kind: InstrumentKind = "spot",
    settle: str | None = None,
    expiry: int | None = None,
    contract_value: float = 1.0,
    contract_multiplier: float = 1.0,
) -> Instrument | None:
    """The instrument, or None when its parts make no normalized symbol (an asset name with
    characters the grammar does not take): such an instrument cannot be configured anyway.

    Spot, and contracts whose size field counts base units, keep the default contract value
    of 1; `settle` defaults to the quote currency (spot and linear contracts).
    """
    day = expiry_day(expiry) if expiry is not None else None
    symbol = SymbolParts(base, quote, kind in _PERPETUALS, day).symbol
    if SYMBOL_RE.match(symbol) is None:
        return None
    return Instrument(
        exchange=exchange,
        symbol=symbol,
        ts=read_ts_ns,
        native_symbol=native,
        kind=kind,
        base=base,
        quote=quote,
        settle=quote if settle is None else settle,
        contract_value=contract_value,
        contract_multiplier=contract_multiplier,
        tick_size=tick_size,
        lot_size=lot_size,
        expiry=expiry,
        status=status,
    )
