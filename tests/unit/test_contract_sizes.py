"""Sizes in base units: an inverse contract's size divides by the price, which must be > 0."""

from __future__ import annotations

import math

import pytest

from marketstream.venues.base.contracts import SizeRule
from marketstream.venues.base.mapper import FrameError

INVERSE = SizeRule(100.0, True)  # contracts of 100 USD


def test_an_inverse_size_is_the_quote_value_over_the_price() -> None:
    assert INVERSE.size(3.0, 50_000.0) == pytest.approx(300.0 / 50_000.0)
    (price, size), removal = INVERSE.levels([(50_000.0, 3.0), (40_000.0, 0.0)])
    assert price == 50_000.0
    assert size == pytest.approx(300.0 / 50_000.0)
    assert removal == (40_000.0, 0.0)


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan])
def test_a_price_that_is_not_positive_is_named_not_divided_by(price: float) -> None:
    with pytest.raises(FrameError, match=r"price .* of an inverse contract: .* positive price"):
        INVERSE.size(1.0, price)


def test_a_book_level_at_price_zero_is_named() -> None:
    with pytest.raises(FrameError, match=r"price 0.0 of an inverse contract"):
        INVERSE.levels([(50_000.0, 1.0), (0.0, 5.0)])


def test_linear_sizes_need_no_price() -> None:
    assert SizeRule(0.01, False).size(3.0, 0.0) == pytest.approx(0.03)
    ((price, size),) = SizeRule(0.01, False).levels([(0.0, 3.0)])
    assert price == 0.0
    assert size == pytest.approx(0.03)
