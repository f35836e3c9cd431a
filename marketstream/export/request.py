"""What an export is asked for, checked before any tier is read: one exchange, its symbols,
record types, a time range and an output directory, in one of the backtesting formats."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from marketstream.errors import MarketStreamError
from marketstream.query.hot_queries import (
    INTERVALS,
    check_exchange,
    check_range,
    check_symbol,
)
from marketstream.schemas.instruments import EXCHANGES

# Every record type an export may ask for, by its table name.
EXPORT_TYPES: Final = (
    "trades",
    "quotes",
    "books",
    "candles",
    "funding",
    "liquidations",
    "open_interest",
)


class ExportInputError(MarketStreamError, ValueError):
    """An export request that cannot be carried out; the message names the input."""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """One export: `types` are table names; `interval` is the bars' (candles only)."""

    format: str
    exchange: str
    symbols: tuple[str, ...]
    types: tuple[str, ...]
    start_ns: int
    end_ns: int
    out: Path
    interval: str = "1m"

    def __post_init__(self) -> None:
        if check_exchange(self.exchange) not in EXCHANGES:  # a polled source has prices only
            raise ExportInputError(
                f"--exchange {self.exchange!r} is a polled price source: export writes exchange "
                f"records only ({', '.join(EXCHANGES)}); read a source's prices with "
                "`marketstream query prices` or /v1/prices"
            )
        if not self.symbols:
            raise ExportInputError("no --symbol given: expected at least one, e.g. BTC-USDT")
        for symbol in self.symbols:
            check_symbol(symbol)
        if len(set(self.symbols)) != len(self.symbols):
            raise ExportInputError(f"--symbol lists a symbol twice: {', '.join(self.symbols)}")
        if not self.types:
            raise ExportInputError("no --type given: expected one or more record types")
        for name in self.types:
            if name not in EXPORT_TYPES:
                raise ExportInputError(
                    f"--type {name!r} is not known: expected one of {', '.join(EXPORT_TYPES)}"
                )
        if len(set(self.types)) != len(self.types):
            raise ExportInputError(f"--type lists a type twice: {', '.join(self.types)}")
        if self.interval not in INTERVALS:
            raise ExportInputError(
                f"--interval {self.interval!r} is not known: expected one of {', '.join(INTERVALS)}"
            )
        check_range(self.start_ns, self.end_ns)


def split_list(text: str, what: str) -> tuple[str, ...]:
    """`a,b` or `a` as a tuple, for options that take a comma-separated list."""
    names = tuple(part.strip() for part in text.split(","))
    if any(not name for name in names):
        raise ExportInputError(f"{what} {text!r} has an empty name: expected e.g. a,b")
    return names
