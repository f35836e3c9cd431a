"""Kraken on real captured frames (tests/data/captures; v1 only: no real v2 capture was found).

Covers the 2021 AssetPairs answer (instrument metadata), v1 trades and tickers, a v1 book
session whose 4269 update checksums must all verify, and Tardis' v1 samples. Expected
values are those of EXPECTED.md, read off the raw frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.ingest.books import BookKeeper
from marketstream.ingest.processor import FrameProcessor
from marketstream.replay.recording_format import RecordedFrame, read_recording
from marketstream.schemas.records import Quote, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError
from marketstream.venues.kraken.instruments import instrument_urls, parse_instruments
from marketstream.venues.kraken.venue import KRAKEN

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"
mapper = KRAKEN.make_mapper(())


def lines(name: str) -> list[RecordedFrame]:
    return list(read_recording(CAPTURES / name))


def test_asset_pairs_name_symbols_from_wsname() -> None:
    [line] = lines("kraken-assetpairs-rest.jsonl")
    assert KRAKEN.parse_instruments is parse_instruments
    assert instrument_urls("https://api.kraken.com/") == [
        "https://api.kraken.com/0/public/AssetPairs"
    ]
    instruments = {i.symbol: i for i in parse_instruments(line.url, line.frame, line.recv_ns)}
    # 304 pairs, of which the `.d` dark-pool books have no wsname (no feed)
    assert 0 < len(instruments) < 304
    btc = instruments["BTC-USD"]  # XXBTZUSD, wsname XBT/USD
    assert (btc.native_symbol, btc.base, btc.quote, btc.kind) == ("BTC/USD", "BTC", "USD", "spot")
    # pair_decimals 1 -> tick 0.1; lot_decimals 8 -> lot 1e-8
    assert btc.tick_size == pytest.approx(0.1)
    assert btc.lot_size == pytest.approx(1e-8)
    assert instruments["DOGE-USD"].native_symbol == "DOGE/USD"  # wsname XDG/USD
    assert "XBT-USD" not in instruments
    assert all("-" in s and "." not in s for s in instruments)


def test_an_error_answer_is_refused() -> None:
    with pytest.raises(
        FrameError,
        match=r"^kraken: https://api\.kraken\.com/0/public/AssetPairs: AssetPairs: error",
    ):
        parse_instruments("https://api.kraken.com/0/public/AssetPairs",
                          '{"error":["EGeneral:Too many requests"]}', 1)  # fmt: skip


def test_v1_trades_by_hand() -> None:
    trades = [t for line in lines("kraken-v1-trades.jsonl") for t in mapper(line.frame, 0)]
    assert len(trades) == 10
    assert all(isinstance(t, Trade) for t in trades)
    by = {(t.symbol, t.side): 0.0 for t in trades if isinstance(t, Trade)}
    for t in trades:
        assert isinstance(t, Trade)
        by[t.symbol, t.side] += t.size
    # XMR/USD: sells 0.89594024 + 0.28245396 + 1.71754604 = 2.89594024, buy 1.25690315
    assert by["XMR-USD", "sell"] == pytest.approx(2.89594024)
    assert by["XMR-USD", "buy"] == pytest.approx(1.25690315)
    # SC/EUR: sells 15979.71727919 + 5000; buys 8500 + 2383.16665529 + 1081.72663 + 20000
    assert by["SC-EUR", "sell"] == pytest.approx(20979.71727919)
    assert by["SC-EUR", "buy"] == pytest.approx(31964.89328529)
    first = trades[0]
    assert isinstance(first, Trade)
    # line 21: XMR/USD s 0.89594024 @ 354.11 at 1618678142.557535
    assert (first.symbol, first.side, first.price, first.size, first.ts) == (
        "XMR-USD", "sell", 354.11, 0.89594024, 1618678142557535000
    )  # fmt: skip


def test_v1_tickers_are_quotes() -> None:
    quotes = [q for line in lines("kraken-v1-ticker.jsonl") for q in mapper(line.frame, 0)]
    assert len(quotes) == 18
    assert all(isinstance(q, Quote) for q in quotes)


def test_every_v1_book_checksum_verifies() -> None:
    keeper = BookKeeper(KRAKEN.name, KRAKEN.book_rules, depth=10, interval_ns=1)
    processor = FrameProcessor(mapper, keeper, max_future_skew_ns=10**18, known_symbols=None)
    verified = 0
    for line in lines("kraken-v1-book.jsonl"):
        out = processor.process(line.frame, line.recv_ns)
        assert (out.rejected, out.gaps, out.checksum_failures) == ((), (), ())
        verified += out.checksums_verified
    assert verified == 4269


def test_tardis_v1_samples() -> None:
    frames = lines("kraken-v1-tardis.jsonl")
    # line 2: XBT/EUR two trades s 0.01596347 @ 9482.4, b 0.28522465 @ 9488.2
    sell, buy = mapper(frames[1].frame, frames[1].recv_ns)
    assert isinstance(sell, Trade)
    assert isinstance(buy, Trade)
    assert (sell.symbol, sell.side, sell.size, sell.price) == (
        "BTC-EUR",
        "sell",
        0.01596347,
        9482.4,
    )
    assert (buy.side, buy.size, buy.price) == ("buy", 0.28522465, 9488.2)
    # line 4: BCH/USD, one frame with two dicts (asks, then bids)
    updates = mapper(frames[3].frame, frames[3].recv_ns)
    asks = [a for u in updates if isinstance(u, BookUpdate) for a in u.asks]
    bids = [b for u in updates if isinstance(u, BookUpdate) for b in u.bids]
    assert sorted(asks) == [(400.3, 0.0), (403.5, 0.0), (413.9, 27.71904764)]
    assert bids == [(400.0, 3.38983321)]
    # lines 6-7: `spread` is not a channel the mapper reads: refused with the reason (and
    # line 7's all-zero spread can never become a quote)
    for line in frames[5:7]:
        with pytest.raises(FrameError, match="channelName 'spread'"):
            mapper(line.frame, line.recv_ns)
