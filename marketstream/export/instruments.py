"""The instrument definitions an export needs (native symbol, kind, currencies, tick and lot
size): the newest the tiers hold, else the shipped snapshot's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from marketstream.export.request import ExportInputError
from marketstream.instruments.snapshot import load_catalog

if TYPE_CHECKING:
    from pathlib import Path

    from marketstream.schemas.records import Instrument


def export_instruments(
    exchange: str, symbols: Iterable[str], stored: Iterable[Instrument], cache: Path | None
) -> dict[str, Instrument]:
    """Each symbol's definition, by symbol; ExportInputError names any that is unknown."""
    newest = {i.symbol: i for i in stored if i.exchange == exchange}
    catalog = load_catalog(cache)
    found: dict[str, Instrument] = {}
    missing = []
    for symbol in symbols:
        instrument = newest.get(symbol) or catalog.get(exchange, symbol)
        if instrument is None:
            missing.append(symbol)
        else:
            found[symbol] = instrument
    if missing:
        raise ExportInputError(
            f"{exchange} {', '.join(missing)}: no instrument definition in any tier or the "
            "instrument snapshot; an export needs its native symbol, kind, tick and lot size "
            "(run `marketstream instruments refresh` or ingest it once)"
        )
    return found
