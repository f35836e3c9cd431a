"""Bybit on real captured frames (tests/data/captures, Tardis.dev recordings of 2023-2025 via
tardis-node's tests, MPL-2.0; see PROVENANCE.md). Expected values are read off the raw frames
by hand (EXPECTED.md), the arithmetic in a comment beside each.

What the captures cover: v5 linear (orderbook.1 snapshot + 2 deltas, orderbook.50 of the USDC
perpetual BTCPERP, tickers, publicTrade, liquidation, allLiquidation), v5 inverse (tickers of
the perpetual and of the dated future BTCUSDU23, publicTrade, liquidation) and v5 spot
(orderbook.1 snapshot + delta, orderbook.50, publicTrade). The legacy 2021 feed
(`/realtime`, `trade.*`, `orderBookL2_25.*`) is not supported by the mapper: its frames are
refused (tested below), never mapped wrongly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.replay.recording_format import RecordedFrame, read_recording
from marketstream.schemas.records import Funding, Liquidation, OpenInterest, Quote, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, Mapper
from marketstream.venues.bybit.venue import BYBIT
from tests.venues.bybit.instruments import INSTRUMENTS
from tests.venues.conftest import assert_valid

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"
MS = 1_000_000


def _frames(name: str) -> list[RecordedFrame]:
    return list(read_recording(CAPTURES / name))


def _mapper(url: str) -> Mapper:
    assert BYBIT.mapper_for_recording is not None
    return BYBIT.mapper_for_recording(url, INSTRUMENTS)


def _map(frame: RecordedFrame, mapper: Mapper) -> list[Item]:
    items = mapper(frame.frame, frame.recv_ns)
    for item in items:
        assert_valid(item, frame.recv_ns)
    return items


# --- linear --------------------------------------------------------------------------------


def test_linear_depth_1_quotes_follow_the_snapshot_and_its_deltas() -> None:
    frames = _frames("bybit-v5-linear.jsonl")
    mapper = _mapper(frames[0].url)
    # line 2 snapshot: bid 28552.00 x 0.047, ask 28552.10 x 25.433 (u 7003305)
    assert _map(frames[1], mapper) == [
        Quote("bybit", "BTC-USDT-PERP", 1680673820717 * MS, frames[1].recv_ns,
              28552.00, 0.047, 28552.10, 25.433)
    ]  # fmt: skip
    # line 3 delta u 7003306: bid 28552.00 -> 0.012, asks unchanged
    assert _map(frames[2], mapper) == [
        Quote("bybit", "BTC-USDT-PERP", 1680673821137 * MS, frames[2].recv_ns,
              28552.00, 0.012, 28552.10, 25.433)
    ]  # fmt: skip
    # line 8: a delta of another session (u 1188472, not 7003307): a gap, reported, not applied
    with pytest.raises(FrameError, match="delta u 1188472 of BTCUSDT does not follow u 7003306"):
        mapper(frames[7].frame, frames[7].recv_ns)
    # ...and the symbol waits for a snapshot: the same delta again is refused as orphan
    with pytest.raises(FrameError, match="delta u 1188472 of BTCUSDT before any snapshot"):
        mapper(frames[7].frame, frames[7].recv_ns)


def test_a_depth_1_delta_replaces_the_top_it_names() -> None:
    """Line 8 applied after a snapshot one update before it (as in its own session): bids
    27994.60 x 0 (removes the old top) and 27991.70 x 0.777; asks 27994.40 x 0.058 (new top)
    and 27994.80 x 0 (removes the old one)."""
    line_8 = _frames("bybit-v5-linear.jsonl")[7]
    mapper = _mapper(line_8.url)
    snapshot = (
        '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1682092584000,"data":{"s":"BTCUSDT",'
        '"b":[["27994.60","1.5"]],"a":[["27994.80","2.0"]],"u":1188471,"seq":1}}'
    )
    mapper(snapshot, line_8.recv_ns)
    (quote,) = _map(line_8, mapper)
    assert isinstance(quote, Quote)
    assert (quote.bid_px, quote.bid_sz, quote.ask_px, quote.ask_sz) == (
        27991.70, 0.777, 27994.40, 0.058,
    )  # fmt: skip


def test_linear_tickers_are_funding_and_open_interest_in_coins() -> None:
    line_6 = _frames("bybit-v5-linear.jsonl")[5]
    funding, open_interest = _map(line_6, _mapper(line_6.url))
    assert funding == Funding(
        "bybit", "BTC-USDT-PERP", 1680673821770 * MS, 0.0001, 28552.81, 28562.25,
        1680681600000 * MS,
    )  # fmt: skip
    # openInterest 52774.528 is BTC already (linear); openInterestValue 1506861070.82 USDT
    assert open_interest == OpenInterest(
        "bybit", "BTC-USDT-PERP", 1680673821770 * MS, line_6.recv_ns, 52774.528, 1506861070.82
    )


def test_linear_trade_and_the_usdc_perpetual_book() -> None:
    frames = _frames("bybit-v5-linear.jsonl")
    mapper = _mapper(frames[0].url)
    (trade,) = _map(frames[6], mapper)  # line 7: Buy 0.4 LTC @ 94.53
    assert trade == Trade(
        "bybit", "LTC-USDT-PERP", 1680688979983 * MS, frames[6].recv_ns,
        "4c7b6bdc-b4a3-5716-9c7b-bbe01dc7072f", 94.53, 0.4, "buy",
    )  # fmt: skip
    snapshot, delta = _map(frames[3], mapper) + _map(frames[4], mapper)  # lines 4-5, BTCPERP
    assert isinstance(snapshot, BookUpdate)
    assert isinstance(delta, BookUpdate)
    assert (snapshot.symbol, snapshot.bids, snapshot.asks, snapshot.last_seq) == (
        "BTC-USDC-PERP", [(28555.20, 0.597)], [(28555.30, 0.225)], 20683568,
    )  # fmt: skip
    assert (delta.bids, delta.asks, delta.last_seq) == (
        [(28555.20, 0.677)], [(28555.30, 0.029)], 20683569,
    )  # fmt: skip


def test_liquidations_carry_the_order_side_opposite_to_the_liquidated_position() -> None:
    """Bybit's S/side is the side of the liquidated position (Buy: a long was liquidated);
    the record's side is the liquidation order's (that long is sold)."""
    frames = _frames("bybit-v5-linear.jsonl")
    mapper = _mapper(frames[0].url)
    # line 1, legacy `liquidation.GALAUSDT`: side Buy, size 1637 GALA @ 0.03803
    assert _map(frames[0], mapper) == [
        Liquidation("bybit", "GALA-USDT-PERP", 1673251091822 * MS, frames[0].recv_ns,
                    "sell", 0.03803, 1637.0)
    ]  # fmt: skip
    # line 9, `allLiquidation.PIPPINUSDT`: S Sell (a short), v 2846 @ 0.02456 -> a buy
    assert _map(frames[8], mapper) == [
        Liquidation("bybit", "PIPPIN-USDT-PERP", 1740480207110 * MS, frames[8].recv_ns,
                    "buy", 0.02456, 2846.0)
    ]  # fmt: skip


# --- inverse -------------------------------------------------------------------------------


def test_inverse_trades_are_usd_contracts_over_the_price() -> None:
    line_5 = _frames("bybit-v5-inverse.jsonl")[4]
    trades = _map(line_5, _mapper(line_5.url))
    assert {(t.symbol, t.price, t.side) for t in trades if isinstance(t, Trade)} == {
        ("BTC-USD-PERP", 28560.50, "buy")
    }
    # v 5823 + 3 + 5593 = 11419 USD contracts of 1 USD; 11419 / 28560.5 = 0.399818... BTC
    sizes = [t.size for t in trades if isinstance(t, Trade)]
    assert sizes == pytest.approx([5823 / 28560.5, 3 / 28560.5, 5593 / 28560.5])
    assert sum(sizes) == pytest.approx(0.3998179304, rel=1e-9)


def test_inverse_open_interest_is_converted_at_the_mark_price() -> None:
    frames = _frames("bybit-v5-inverse.jsonl")
    mapper = _mapper(frames[0].url)
    # line 3 BTCUSD: openInterest 449736676 USD / markPrice 28560.00 = 15747.0825 BTC (Bybit's
    # own openInterestValue says 15747.08 BTC); value: 449736676 USD
    funding, open_interest = _map(frames[2], mapper)
    assert isinstance(funding, Funding)
    assert funding.symbol == "BTC-USD-PERP"
    assert isinstance(open_interest, OpenInterest)
    assert open_interest.open_interest == pytest.approx(449736676 / 28560.00)
    assert round(open_interest.open_interest, 2) == 15747.08
    assert open_interest.value == 449736676.0
    # line 4, a delta with openInterest 449736674 and no mark price: the last one (28560.00)
    _, delta_oi = _map(frames[3], mapper)
    assert isinstance(delta_oi, OpenInterest)
    assert delta_oi.open_interest == pytest.approx(449736674 / 28560.00)


def test_the_dated_inverse_future_has_open_interest_and_no_funding() -> None:
    frames = _frames("bybit-v5-inverse.jsonl")
    mapper = _mapper(frames[0].url)
    # line 1 BTCUSDU23 (deliveryTime 2023-09-29T08:00:00Z): fundingRate "" -> no funding;
    # openInterest 4547176 USD / markPrice 29023.60 = 156.6717 BTC (Bybit: 156.67 BTC)
    (open_interest,) = _map(frames[0], mapper)
    assert isinstance(open_interest, OpenInterest)
    assert open_interest.symbol == "BTC-USD-20230929"
    assert open_interest.open_interest == pytest.approx(4547176 / 29023.60)
    assert round(open_interest.open_interest, 2) == 156.67
    # line 2, its delta: bid/ask and basis only -> nothing to publish
    assert _map(frames[1], mapper) == []


def test_inverse_liquidation_size_is_in_the_base_coin() -> None:
    line_6 = _frames("bybit-v5-inverse.jsonl")[5]
    # liquidation.XRPUSD: side Sell (a short liquidated) -> a buy; 6949 USD / 0.5149 XRP
    (liquidation,) = _map(line_6, _mapper(line_6.url))
    assert isinstance(liquidation, Liquidation)
    assert liquidation.size == pytest.approx(6949 / 0.5149)  # 13495.82 XRP
    assert liquidation == Liquidation(
        "bybit", "XRP-USD-PERP", 1680673944093 * MS, line_6.recv_ns, "buy", 0.5149,
        liquidation.size,
    )  # fmt: skip


# --- spot ----------------------------------------------------------------------------------


def test_spot_depth_1_quotes_and_trades() -> None:
    frames = _frames("bybit-v5-spot.jsonl")
    mapper = _mapper(frames[0].url)
    quotes = [q for f in frames[:2] for q in _map(f, mapper) if isinstance(q, Quote)]
    # line 1: bid 28165.07 x 0.175231 / ask 28165.08 x 0.996816; line 2: bid -> 0.166754
    assert [(q.bid_px, q.bid_sz, q.ask_px, q.ask_sz) for q in quotes] == [
        (28165.07, 0.175231, 28165.08, 0.996816),
        (28165.07, 0.166754, 28165.08, 0.996816),
    ]
    trades = [t for t in _map(frames[4], mapper) if isinstance(t, Trade)]  # line 5
    assert [(t.trade_id, t.price, t.side) for t in trades] == [
        ("2290000000050703789", 28165.38, "sell"),
        ("2290000000050703790", 28165.38, "sell"),
        ("2290000000050703791", 28165.38, "sell"),
        ("2290000000050703792", 28165.38, "sell"),
    ]
    # 0.041732 + 0.008513 + 0.042384 + 0.055371 = 0.148000 BTC
    assert sum(t.size for t in trades) == pytest.approx(0.148)
    usdc = [t for t in _map(frames[5], mapper) if isinstance(t, Trade)]  # line 6
    assert [(t.symbol, t.size, t.price, t.side) for t in usdc] == [
        ("BTC-USDC", 0.00433, 28528.98, "buy")
    ]


# --- legacy feed ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bybit-legacy-inverse.jsonl", "bybit-legacy-linear-trades.jsonl"])
def test_the_legacy_2021_feed_is_refused_with_a_reason(name: str) -> None:
    """The pre-v5 `/realtime` endpoints are not a v5 market: every frame is refused, naming the
    URL, rather than mapped by v5 rules."""
    frames = _frames(name)
    mapper = _mapper(frames[0].url)
    with pytest.raises(FrameError, match="ends in none of /spot, /linear, /inverse"):
        mapper(frames[0].frame, frames[0].recv_ns)
