"""The instruments known to the pipeline, by exchange and normalized symbol.

Mappers get their exchange's instruments (`for_exchange`) and index them as their wire
format needs (a native name may stand for two markets on one venue, so the index is theirs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from marketstream.schemas.records import Instrument


class Catalog:
    """Immutable set of instruments; a later record of the same instrument replaces an earlier."""

    __slots__ = ("_by_exchange",)

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        by_exchange: dict[str, dict[str, Instrument]] = {}
        for instrument in sorted(instruments, key=lambda i: i.ts):
            by_exchange.setdefault(instrument.exchange, {})[instrument.symbol] = instrument
        self._by_exchange: Mapping[str, Mapping[str, Instrument]] = MappingProxyType(
            {name: MappingProxyType(symbols) for name, symbols in by_exchange.items()}
        )

    def __len__(self) -> int:
        return sum(len(symbols) for symbols in self._by_exchange.values())

    def __iter__(self) -> Iterator[Instrument]:
        for symbols in self._by_exchange.values():
            yield from symbols.values()

    def for_exchange(self, exchange: str) -> tuple[Instrument, ...]:
        return tuple(self._by_exchange.get(exchange, {}).values())

    def get(self, exchange: str, symbol: str) -> Instrument | None:
        return self._by_exchange.get(exchange, {}).get(symbol)

    def merged(self, newer: Iterable[Instrument]) -> Catalog:
        """This catalog with `newer` added or replacing the same exchange and symbol."""
        return Catalog([*self, *newer])
