"""Exchange sizes to base-asset units, from an instrument's metadata.

Spot sizes and most linear contracts are already coins (factor 1); OKX linear swaps count
contracts of `ctVal` coins; inverse contracts are worth a fixed quote amount, so their base
size is that amount over the price of the trade or level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from marketstream.schemas.instruments import parse_symbol
from marketstream.schemas.records import INVERSE_KINDS, Instrument, Level
from marketstream.venues.base.mapper import FrameError


@dataclass(frozen=True, slots=True)
class SizeRule:
    """`size(sz, px)` in base units; `unit` rules (coins already) let mappers skip the work."""

    factor: float  # base units (linear) or quote units (inverse) per unit of the size field
    inverse: bool
    # Coins already (factor 1, linear): a plain field, read for every record of every frame.
    unit: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", self.factor == 1.0 and not self.inverse)

    def size(self, size: float, price: float) -> float:
        if not self.inverse:
            return size * self.factor
        if price > 0.0:
            return size * self.factor / price
        raise FrameError(_no_inverse_size(price))

    def levels(self, levels: list[Level]) -> list[Level]:
        """Book levels with their sizes in base units (a size of 0 stays 0: a removal)."""
        if self.unit:
            return levels
        factor = self.factor
        if self.inverse:
            try:
                return [(price, size * factor / price) for price, size in levels]
            except ZeroDivisionError:
                raise FrameError(_no_inverse_size(0.0)) from None
        return [(price, size * factor) for price, size in levels]


def _no_inverse_size(price: float) -> str:
    return (
        f"price {price!r} of an inverse contract: its size in base units is the quote value "
        "over the price, so a positive price was expected"
    )


COINS: Final = SizeRule(1.0, False)


def size_rule(instrument: Instrument) -> SizeRule:
    factor = instrument.contract_value * instrument.contract_multiplier
    return SizeRule(factor, instrument.kind in INVERSE_KINDS)


def rule_for(symbol: str, instrument: Instrument | None) -> SizeRule:
    """The instrument's rule; a spot symbol without metadata counts in coins, a derivative
    without metadata raises FrameError (its contract size is unknown: no size is guessed)."""
    if instrument is not None:
        return size_rule(instrument)
    if parse_symbol(symbol).derivative:
        raise FrameError(
            f"{symbol}: no instrument metadata, so its contract size is unknown: expected it "
            "in the instrument list (`marketstream instruments refresh`)"
        )
    return COINS
