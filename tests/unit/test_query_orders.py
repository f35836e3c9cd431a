"""The order the tiered readers give rows in, and the newest instrument row: pure parts."""

from __future__ import annotations

import msgspec.structs

from marketstream.query.all_tiers import latest_instruments
from marketstream.query.hot_queries import order_keys
from marketstream.schemas.columns import INSTRUMENTS, LIQUIDATIONS, OPEN_INTEREST, TRADES
from marketstream.schemas.records import Instrument

T0 = 1_700_000_000_000_000_000


def test_rows_are_ordered_by_time_then_the_rest_of_the_dedup_key() -> None:
    assert order_keys(TRADES) == ("ts", "trade_id")
    assert order_keys(LIQUIDATIONS) == ("ts", "side", "price", "size")
    assert order_keys(OPEN_INTEREST) == ("ts",)
    assert order_keys(INSTRUMENTS) == ("ts",)


def test_the_newest_row_of_each_instrument_wins_whatever_tier_gave_it() -> None:
    old = Instrument("okx", "BTC-USDT-PERP", T0, "BTC-USDT-SWAP", "linear_perpetual", "BTC",
                     "USDT", "USDT", 0.01, 1.0, 0.1, 1.0, None, "trading")  # fmt: skip
    new = msgspec.structs.replace(old, ts=T0 + 1, contract_value=0.001)
    spot = msgspec.structs.replace(old, exchange="binance", symbol="BTC-USDT", kind="spot")
    tie = msgspec.structs.replace(new, status="halted")
    assert latest_instruments([new, spot, old]) == [spot, new]
    assert latest_instruments([old, new, tie]) == [new]  # a tie keeps the first (hottest) tier
    assert latest_instruments([]) == []
