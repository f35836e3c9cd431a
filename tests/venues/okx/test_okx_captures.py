"""OKX on real captured frames (tests/data/captures, see PROVENANCE.md): instrument metadata
from the real REST answers, sizes in base units, dated futures, funding, liquidations, open
interest and book checksums. Expected values are those of EXPECTED.md, counted from the raw
frames by hand; the arithmetic is written next to each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import msgspec.structs
import orjson
import pytest

from marketstream.ingest.books import BookKeeper
from marketstream.ingest.processor import FrameProcessor
from marketstream.schemas.records import (
    Book,
    Funding,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from marketstream.schemas.validation import Limits, validate
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item
from marketstream.venues.okx.instruments import parse_instruments
from marketstream.venues.okx.venue import OKX
from tests.venues.okx.captures import okx_instrument, okx_instruments, read_capture

MS = 1_000_000


def near(value: float, rel: float = 1e-12, abs: float | None = None) -> float:
    """`pytest.approx`, typed as the float it stands for inside records and tuples."""
    return cast(float, pytest.approx(value, rel=rel, abs=abs))


def expired(native: str, like: str) -> Instrument:
    """A future that had expired by May 2022, from a later one of its series in that list
    (same underlying and contract value; expiry 08:00 UTC of the id's day)."""
    day = datetime.strptime("20" + native.rsplit("-", 1)[1], "%Y%m%d").replace(hour=8, tzinfo=UTC)
    base, quote, _ = native.split("-")
    return msgspec.structs.replace(
        next(i for i in okx_instruments() if i.native_symbol == like),
        native_symbol=native,
        symbol=f"{base}-{quote}-{day:%Y%m%d}",
        expiry=int(day.timestamp()) * 10**9,
    )


EXPIRED = (
    expired("FIL-USD-220325", "FIL-USD-220520"),  # ctVal 10 USD, inverse
    expired("FIL-USDT-220325", "FIL-USDT-220520"),  # ctVal 0.1 FIL, linear
    expired("XRP-USD-230929", "XRP-USD-220930"),  # ctVal 10 USD, inverse
    expired("ADA-USDT-211224", "ADA-USDT-220520"),  # ctVal 100 ADA, linear
)
mapper = OKX.make_mapper((), (*okx_instruments(), *EXPIRED))


def mapped(name: str) -> list[list[Item]]:
    """Each line's items, in file order."""
    return [mapper(line.frame, line.recv_ns) for line in read_capture(name)]


def only(items: list[Item]) -> Item:
    assert len(items) == 1
    return items[0]


# --- instrument metadata ---------------------------------------------------------------------


def test_the_rest_bodies_list_every_spot_swap_and_future() -> None:
    lines = read_capture("okx-instruments-rest.jsonl")
    counts = [len(parse_instruments(line.url, line.frame, line.recv_ns)) for line in lines]
    assert counts == [513, 166, 104]
    kinds = {i.kind for i in okx_instruments()}
    assert kinds == {
        "spot", "linear_perpetual", "inverse_perpetual", "linear_future", "inverse_future"
    }  # fmt: skip


def test_instrument_values_checked_by_hand() -> None:
    spot = okx_instrument("BTC-USDT")
    assert (spot.native_symbol, spot.kind, spot.base, spot.quote) == (
        "BTC-USDT", "spot", "BTC", "USDT"
    )  # fmt: skip
    assert (spot.tick_size, spot.lot_size, spot.contract_value) == (0.1, 1e-8, 1.0)
    linear = okx_instrument("BTC-USDT-PERP")
    assert (linear.native_symbol, linear.kind, linear.contract_value, linear.settle) == (
        "BTC-USDT-SWAP", "linear_perpetual", 0.01, "USDT"
    )  # fmt: skip
    inverse = okx_instrument("BTC-USD-PERP")
    assert (inverse.native_symbol, inverse.kind, inverse.contract_value, inverse.settle) == (
        "BTC-USD-SWAP", "inverse_perpetual", 100.0, "BTC"
    )  # fmt: skip
    future = okx_instrument("BTC-USD-20220527")
    assert (future.native_symbol, future.kind, future.contract_value, future.status) == (
        "BTC-USD-220527", "inverse_future", 100.0, "live"
    )  # fmt: skip
    # expTime 1653638400000 ms = 2022-05-27 08:00 UTC
    assert future.expiry == 1653638400000 * MS
    assert datetime.fromtimestamp(1653638400, UTC) == datetime(2022, 5, 27, 8, tzinfo=UTC)
    assert okx_instrument("BTC-USDT-20220527").contract_value == 0.01


def test_an_error_answer_is_refused_with_its_code() -> None:
    body = orjson.dumps({"code": "50011", "msg": "Too Many Requests", "data": []})
    with pytest.raises(
        FrameError,
        match=r"^okx: https://www.okx.com/\S+: instruments: error '50011'.*Too Many Requests",
    ):
        parse_instruments("https://www.okx.com/api/v5/public/instruments?instType=SWAP", body, 1)


# --- trades ----------------------------------------------------------------------------------


def test_trades_of_a_dated_future_an_inverse_swap_and_spot() -> None:
    lines = mapped("okx-trades.jsonl")
    trades = [t for items in lines for t in items]
    assert len(trades) == 74
    assert all(isinstance(t, Trade) for t in trades)
    # line 1: BTC-USD-220527, 1 contract x 100 USD / 30218.8 = 0.0033092 BTC
    assert only(lines[0]) == Trade(
        "okx", "BTC-USD-20220527", 1652459199958 * MS, 1652459225507075800, "7849", 30218.8,
        near(100 / 30218.8), "buy",
    )  # fmt: skip
    # line 2: UNI-USD-SWAP, 100 contracts x 10 USD / 5.123 = 195.198 UNI
    uni = only(lines[1])
    assert isinstance(uni, Trade)
    assert (uni.symbol, uni.side, uni.price) == ("UNI-USD-PERP", "sell", 5.123)
    assert uni.size == near(195.198, abs=1e-3)
    # line 3: spot sizes are coins as sent
    assert only(lines[2]) == Trade(
        "okx", "BTC-USDT", 1652459224818 * MS, read_capture("okx-trades.jsonl")[2].recv_ns,
        "338476307", 30236.0, 0.0002, "buy",
    )  # fmt: skip
    future = [t for t in trades if isinstance(t, Trade) and t.symbol == "BTC-USD-20220527"]
    # 4 trades, 1 + 2 + 2 + 30 = 35 contracts = 3500 USD: size x price gives the USD back
    assert [t.trade_id for t in future] == ["7849", "7850", "7851", "7852"]
    assert sum(t.size * t.price for t in future) == near(3500.0)
    spot = [t for t in trades if isinstance(t, Trade) and t.symbol == "BTC-USDT"]
    assert len(spot) == 69
    assert sum(t.size for t in spot) == near(3.48657495)


def test_swap_and_future_trades_in_base_units() -> None:
    fil, btc = mapped("okx-swap-futures-trades.jsonl")
    # FIL-USD-220325: 11 contracts x 10 USD / 36.239 = 3.0354 FIL
    assert only(fil) == Trade(
        "okx", "FIL-USD-20220325", 1640131185600 * MS, 1640131185601000000, "1271987", 36.239,
        near(110 / 36.239), "buy",
    )  # fmt: skip
    # BTC-USDT-SWAP: 5 contracts x 0.01 BTC = 0.05 BTC
    assert only(btc) == Trade(
        "okx", "BTC-USDT-PERP", 1640131236050 * MS, 1640131236051000000, "148266905", 48938.5,
        near(0.05), "buy",
    )  # fmt: skip


def test_a_dated_future_without_metadata_is_dead_lettered_not_guessed() -> None:
    line = read_capture("okx-swap-futures-trades.jsonl")[0]
    with pytest.raises(FrameError, match="FIL-USD-20220325: no instrument metadata"):
        OKX.make_mapper((), okx_instruments())(line.frame, line.recv_ns)


# --- quotes ----------------------------------------------------------------------------------


def test_ticker_sizes_in_base_units() -> None:
    lines = mapped("okx-tickers.jsonl")
    assert [type(only(items)) for items in lines] == [Quote] * 28
    future, uni, last = only(lines[0]), only(lines[1]), only(lines[27])
    assert isinstance(future, Quote)
    assert isinstance(uni, Quote)
    assert isinstance(last, Quote)
    # BTC-USD-220527: bid 4 contracts = 400 USD / 30210.4; ask 3 = 300 USD / 30220.1
    assert (future.symbol, future.bid_px, future.ask_px) == ("BTC-USD-20220527", 30210.4, 30220.1)
    assert future.bid_sz == near(400 / 30210.4)
    assert future.ask_sz == near(300 / 30220.1)
    # UNI-USD-SWAP: bid 96 x 10 USD / 5.134, ask 25 x 10 USD / 5.142
    assert uni.bid_sz == near(960 / 5.134)
    assert uni.ask_sz == near(250 / 5.142)
    assert (last.bid_sz, last.ask_sz, last.last_px) == (0.4112, 1.92174778, 30227.6)


def test_bbo_tbt_of_a_linear_swap_in_btc() -> None:
    [[update]] = mapped("okx-bbo-tbt.jsonl")
    assert isinstance(update, BookUpdate)
    # 990 x 0.01 = 9.90 BTC, 727 x 0.01 = 7.27 BTC; the text stays as sent
    assert update.bids == [(38632.3, near(9.9))]
    assert update.asks == [(38632.4, near(7.27))]
    assert (update.bid_texts, update.ask_texts) == ([("38632.3", "990")], [("38632.4", "727")])


def test_derivative_tickers_of_a_linear_future_and_a_swap() -> None:
    lines = read_capture("okx-derivative-tickers.jsonl")
    fil = only(mapper(lines[2].frame, lines[2].recv_ns))
    # FIL-USDT-220325: 240 x 0.1 = 24 FIL, 900 x 0.1 = 90 FIL
    assert isinstance(fil, Quote)
    assert fil.symbol == "FIL-USDT-20220325"
    assert (fil.bid_sz, fil.ask_sz) == (near(24.0), near(90.0))
    wncg = only(mapper(lines[4].frame, lines[4].recv_ns))
    assert isinstance(wncg, Quote)
    assert (wncg.bid_sz, wncg.ask_sz, wncg.last_px) == (2.0, 168.0, 2.1729)  # ctVal 1 WNCG


# --- books -----------------------------------------------------------------------------------


def test_every_book_checksum_verifies_with_sizes_in_base_units() -> None:
    """290 frames (3 snapshots + 287 updates): OKX's CRC over the level text still verifies
    for all of them, while the float levels are converted."""
    keeper = BookKeeper(OKX.name, OKX.book_rules, depth=5, interval_ns=1)
    processor = FrameProcessor(mapper, keeper, max_future_skew_ns=10**18, known_symbols=None)
    verified, books = 0, []
    for line in read_capture("okx-books.jsonl"):
        out = processor.process(line.frame, line.recv_ns)
        assert (out.rejected, out.gaps, out.checksum_failures) == ((), (), ())
        verified += out.checksums_verified
        books += [r for r in out.records if isinstance(r, Book)]
    assert verified == 290
    first: dict[str, Book] = {}
    for book in books:
        first.setdefault(book.symbol, book)
    future, uni, spot = (first[s] for s in ("BTC-USD-20220527", "UNI-USD-PERP", "BTC-USDT"))
    # best bid 30233.6 x 3 contracts = 300 USD / 30233.6; best ask 30238.8 x 2 = 200 USD
    assert future.bids[0] == (30233.6, near(300 / 30233.6))
    assert future.asks[0] == (30238.8, near(200 / 30238.8))
    # UNI-USD-SWAP best bid 5.14 x 251 x 10 USD / 5.14; best ask 5.148 x 60 x 10 USD / 5.148
    assert uni.bids[0] == (5.14, near(2510 / 5.14))
    assert uni.asks[0] == (5.148, near(600 / 5.148))
    assert (spot.bids[0], spot.asks[0]) == ((30243.4, 0.0012029), (30243.5, 1.44679))


def test_books_l2_tbt_snapshot_of_a_future() -> None:
    lines = read_capture("okx-books-l2-tbt.jsonl")
    update = only(mapper(lines[0].frame, lines[0].recv_ns))
    assert isinstance(update, BookUpdate)
    # The Tardis test literal is trimmed to a few levels, so its checksum (over OKX's full top
    # 25) is read but cannot verify here; the level text is kept as sent.
    assert update.checksum == -44519492
    assert (update.bid_texts, update.ask_texts) == (
        [("1.27803", "2"), ("1.27802", "65")], [("1.27898", "65")]
    )  # fmt: skip
    # ADA-USDT-211224: ctVal 100 ADA: 2 and 65 contracts = 200 and 6500 ADA
    assert update.symbol == "ADA-USDT-20211224"
    assert update.bids == [(1.27803, 200.0), (1.27802, 6500.0)]
    assert update.asks == [(1.27898, 6500.0)]


# --- funding ---------------------------------------------------------------------------------


def test_funding_without_ts_takes_receipt_and_funding_time_is_the_settlement() -> None:
    lines = read_capture("okx-funding-rate.jsonl")
    # line 1: no ts: the receive time, not fundingTime; fundingTime is when this rate settles
    assert mapper(lines[0].frame, lines[0].recv_ns) == [
        Funding(
            "okx", "WNCG-USDT-PERP", 1640131236036000000, 0.00048105, None, None,
            1640131200000 * MS,
        )
    ]  # fmt: skip
    # line 2: only nextFundingRate: no current rate, nothing recorded and nothing refused
    assert mapper(lines[1].frame, lines[1].recv_ns) == []


def test_funding_with_every_field_and_an_unnameable_instrument() -> None:
    """Line 3 is `BTC-USD_UM_XPERP-310404`: no normalized symbol fits it, so it is refused with
    the reason; the same push for a known swap reads ts, the rate and fundingTime."""
    line = read_capture("okx-funding-rate.jsonl")[2]
    with pytest.raises(FrameError, match="instId 'BTC-USD_UM_XPERP-310404' is not an OKX"):
        mapper(line.frame, line.recv_ns)
    message = orjson.loads(line.frame)
    message["arg"]["instId"] = message["data"][0]["instId"] = "BTC-USD-SWAP"
    [funding] = mapper(orjson.dumps(message), line.recv_ns)
    assert funding == Funding(
        "okx", "BTC-USD-PERP", 1785870855692 * MS, -0.0004270396398519, None, None,
        1785888000000 * MS,
    )  # fmt: skip


# --- liquidations and open interest ----------------------------------------------------------


def test_a_liquidation_of_an_inverse_future_in_coins() -> None:
    [[liquidation]] = mapped("okx-liquidation-orders.jsonl")
    # 39 contracts x 10 USD = 390 USD / 0.55205 = 706.46 XRP; side buy (a short closed)
    assert liquidation == Liquidation(
        "okx", "XRP-USD-20230929", 1680173247614 * MS, 1680173247615000000, "buy", 0.55205,
        near(390 / 0.55205),
    )  # fmt: skip
    assert isinstance(liquidation, Liquidation)
    assert liquidation.size == near(706.46, abs=0.01)


def test_open_interest_in_coins() -> None:
    fil, wncg = mapped("okx-open-interest.jsonl")
    # oi 236870 contracts = oiCcy 23687 FIL (ctVal 0.1); no oiUsd, linear: no value
    assert fil == [
        OpenInterest(
            "okx", "FIL-USDT-20220325", 1640131202886 * MS, 1640131202887000000, 23687.0, None
        )
    ]
    assert wncg == [
        OpenInterest(
            "okx", "WNCG-USDT-PERP", 1640131258756 * MS, 1640131258757000000, 644195.0, None
        )
    ]


def test_every_mapped_capture_record_passes_validation() -> None:
    names = [
        "okx-trades.jsonl", "okx-tickers.jsonl", "okx-swap-futures-trades.jsonl",
        "okx-liquidation-orders.jsonl", "okx-open-interest.jsonl", "okx-funding-rate.jsonl",
    ]  # fmt: skip
    for name in names:
        for line in read_capture(name):
            try:
                items = mapper(line.frame, line.recv_ns)
            except FrameError:
                continue  # the unnameable funding instrument, tested above
            limits = Limits(now_ns=line.recv_ns, max_future_skew_ns=10**10, known_symbols=None)
            for item in items:
                assert not isinstance(item, BookUpdate)
                validate(item, limits)
