"""Coinbase on real captured frames (tests/data/captures: coinbase-tardis.jsonl, 9 frames from
Tardis.dev's recorded data, 2019-2022, and the 2021 `/products` answer). Expected values are
those of EXPECTED.md, read off the raw frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.replay.recording_format import RecordedFrame, read_recording
from marketstream.schemas.records import Quote, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item
from marketstream.venues.coinbase.instruments import parse_instruments
from marketstream.venues.coinbase.venue import COINBASE

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"
mapper = COINBASE.make_mapper(())


def lines(name: str) -> list[RecordedFrame]:
    return list(read_recording(CAPTURES / name))


def mapped(line: RecordedFrame) -> list[Item]:
    return mapper(line.frame, line.recv_ns)


def test_products_are_spot_instruments_with_their_increments() -> None:
    [line] = lines("coinbase-products-rest.jsonl")
    instruments = parse_instruments(line.url, line.frame, line.recv_ns)
    assert len(instruments) == 162
    assert {i.kind for i in instruments} == {"spot"}
    assert COINBASE.parse_instruments is parse_instruments
    skl = next(i for i in instruments if i.symbol == "SKL-USD")
    assert (skl.native_symbol, skl.base, skl.quote, skl.status) == (
        "SKL-USD", "SKL", "USD", "online"
    )  # fmt: skip
    assert (skl.tick_size, skl.lot_size, skl.contract_value) == (0.0001, 0.1, 1.0)


def test_a_match_a_ticker_and_book_changes() -> None:
    frames = lines("coinbase-tardis.jsonl")
    ticker, match, update = mapped(frames[0]), mapped(frames[1]), mapped(frames[2])
    # line 1 (2019): prices only, no sizes
    assert ticker == [
        Quote("coinbase", "BTC-USD", 1554076804540000000, frames[0].recv_ns, 4094.99, None,
              4095.0, None, 4095.0)
    ]  # fmt: skip
    # line 2: `side` "buy" is the maker's (resting bid), so the taker sold 0.97133855 @ 4.978
    assert match == [
        Trade("coinbase", "ETC-GBP", 1564617603816000000, frames[1].recv_ns, "216544", 4.978,
              0.97133855, "sell")
    ]  # fmt: skip
    [change] = update
    assert isinstance(change, BookUpdate)
    assert (change.symbol, change.asks, change.bids) == ("BTC-EUR", [(9202.54, 0.432)], [])
    # line 9 (2022): sizes are sent
    [last] = mapped(frames[8])
    assert isinstance(last, Quote)
    assert (last.bid_px, last.bid_sz, last.ask_px, last.ask_sz) == (
        17165.15, 0.6154089, 17167.76, 0.18528568
    )  # fmt: skip


def test_the_placeholder_time_is_refused_with_its_reason() -> None:
    """Line 6: an l2update timed `0001-01-01T00:00:00.000000Z`, which read as a time is
    -62135596800 s, outside int64 nanoseconds: it is dead-lettered, saying why."""
    line = lines("coinbase-tardis.jsonl")[5]
    with pytest.raises(FrameError, match=r"^coinbase: l2update: time .* placeholder"):
        mapped(line)


def test_a_malformed_size_is_refused() -> None:
    """Line 7: a snapshot level with size "0.-10000"."""
    with pytest.raises(FrameError, match="coinbase: snapshot: bids"):
        mapped(lines("coinbase-tardis.jsonl")[6])
