"""Normalized records, their validation, encodings and column layouts (imports nothing else)."""

from marketstream.schemas.columns import SPEC_BY_TABLE, SPEC_BY_TYPE, SPECS, TableSpec, spec_of
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Instrument,
    Kind,
    Liquidation,
    OpenInterest,
    Quote,
    Record,
    Trade,
)

__all__ = [
    "SPECS",
    "SPEC_BY_TABLE",
    "SPEC_BY_TYPE",
    "Book",
    "Candle",
    "Funding",
    "Instrument",
    "Kind",
    "Liquidation",
    "OpenInterest",
    "Quote",
    "Record",
    "TableSpec",
    "Trade",
    "spec_of",
]
