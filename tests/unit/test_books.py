"""Order books from snapshots and deltas: sequence rules, gaps, resyncs, top-N cadence."""

from __future__ import annotations

import zlib
from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from marketstream.config import IngestConfig
from marketstream.ingest.books import NOTHING, BookKeeper, OrderBook
from marketstream.ingest.processor import processor_for
from marketstream.schemas.records import Level
from marketstream.venues.base.mapper import BookUpdate, LevelText
from marketstream.venues.base.venue import BookRules, Sequencing
from marketstream.venues.registry import get_venue

MS = 1_000_000
SECOND = 1000 * MS
T0 = 1_700_000_000 * SECOND


def update(
    ts: int,
    bids: list[Level] | None = None,
    asks: list[Level] | None = None,
    *,
    snapshot: bool = False,
    first: int | None = None,
    last: int | None = None,
    prev: int | None = None,
    symbol: str = "BTC-USDT",
) -> BookUpdate:
    return BookUpdate(
        "binance", symbol, ts, ts + 1, bids or [], asks or [], snapshot, first, last, prev
    )


def book(sequencing: Sequencing, depth: int = 3) -> OrderBook:
    return OrderBook("binance", "BTC-USDT", sequencing, depth, interval_ns=SECOND)


def test_snapshot_then_deltas_without_sequence_numbers() -> None:
    ob = book(Sequencing.NONE)
    out = ob.apply(update(T0, [(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0)], snapshot=True))
    assert len(out.books) == 1  # a snapshot is published at once
    ob.apply(update(T0 + 10 * MS, [(100.0, 0.0), (99.5, 3.0)], [(101.0, 4.0), (102.0, 1.0)]))
    top = ob.top(T0, T0)
    assert top.bids == [(99.5, 3.0), (99.0, 2.0)]  # 100.0 removed by its zero size
    assert top.asks == [(101.0, 4.0), (102.0, 1.0)]
    assert top.seq == 1  # feeds without sequence numbers count applied updates


def test_top_n_is_sorted_and_cut_to_depth() -> None:
    ob = book(Sequencing.NONE, depth=2)
    ob.apply(
        update(
            T0, [(1.0, 1.0), (3.0, 1.0), (2.0, 1.0)], [(6.0, 1), (4.0, 1), (5.0, 1)], snapshot=True
        )
    )
    top = ob.top(T0, T0)
    assert [p for p, _ in top.bids] == [3.0, 2.0]
    assert [p for p, _ in top.asks] == [4.0, 5.0]


def test_books_are_emitted_once_per_interval_of_exchange_time() -> None:
    ob = book(Sequencing.NONE)
    emitted = [len(ob.apply(update(T0, [(1.0, 1.0)], [(2.0, 1.0)], snapshot=True)).books)]
    for offset_ms in (100, 500, 999, 1000, 1500, 2300):
        emitted.append(len(ob.apply(update(T0 + offset_ms * MS, [(1.0, 2.0)])).books))
    assert emitted == [1, 0, 0, 0, 1, 0, 1]
    assert ob.stats.emitted == 3


def test_cadence_re_anchors_when_the_snapshot_clock_ran_ahead() -> None:
    ob = book(Sequencing.NONE)
    years_ahead = T0 + 5 * 365 * 86_400 * SECOND  # a snapshot stamped with a later receive clock
    ob.apply(update(years_ahead, [(1.0, 1.0)], [(2.0, 1.0)], snapshot=True))
    emitted = [len(ob.apply(update(T0 + ms * MS, [(1.0, 2.0)])).books) for ms in (0, 500, 1000)]
    assert emitted == [1, 0, 1]


def test_deltas_before_the_first_snapshot_are_not_applied_without_sequence_numbers() -> None:
    ob = book(Sequencing.NONE)
    out = ob.apply(update(T0, [(1.0, 1.0)]))
    assert out.books == ()
    assert not out.gap
    assert ob.stats.waiting == 1
    ob.apply(update(T0 + 1, [(2.0, 1.0)], [(3.0, 1.0)], snapshot=True))
    assert ob.top(T0, T0).bids == [(2.0, 1.0)]


def test_binance_spot_buffers_deltas_and_bridges_the_rest_snapshot() -> None:
    ob = book(Sequencing.FIRST_LAST)
    ob.apply(update(T0, [(90.0, 1.0)], first=95, last=99))  # contained in the snapshot
    ob.apply(update(T0 + 1, [(98.0, 5.0)], first=100, last=102))  # straddles 101
    ob.apply(update(T0 + 2, [(97.0, 6.0)], first=103, last=105))
    assert ob.stats.waiting == 3
    assert not ob.synced
    out = ob.apply(update(T0 + 3, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=100))
    assert not out.gap
    assert len(out.books) == 1
    top = out.books[0]
    assert top.bids == [(99.0, 1.0), (98.0, 5.0), (97.0, 6.0)]  # 90.0 was never applied
    assert top.seq == 105
    assert not ob.apply(update(T0 + 4, [(96.0, 1.0)], first=106, last=107)).gap


def test_binance_spot_skips_deltas_already_in_a_live_snapshot() -> None:
    ob = book(Sequencing.FIRST_LAST)
    ob.apply(update(T0, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=100))
    out = ob.apply(update(T0 + 1, [(50.0, 1.0)], first=90, last=100))
    assert not out.gap
    assert ob.top(T0, T0).bids == [(99.0, 1.0)]
    assert not ob.apply(update(T0 + 2, [(98.0, 1.0)], first=99, last=103)).gap
    assert ob.last_seq == 103


def test_a_missing_update_is_a_gap_that_asks_for_a_snapshot() -> None:
    ob = book(Sequencing.FIRST_LAST)
    ob.apply(update(T0, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=100))
    assert not ob.apply(update(T0 + 1, first=101, last=105)).gap
    out = ob.apply(update(T0 + 2, [(98.0, 1.0)], first=107, last=110))  # 106 is missing
    assert out.gap
    assert out.needs_snapshot
    assert ob.stats.gaps == 1
    assert not ob.synced
    assert ob.bids == {}
    ob.apply(update(T0 + 3, [(97.0, 1.0)], first=111, last=112))  # buffered
    resync = ob.apply(update(T0 + 4, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=110))
    assert not resync.gap
    assert ob.stats.resyncs == 1
    assert ob.top(T0, T0).bids == [(99.0, 1.0), (97.0, 1.0)]


def test_a_snapshot_older_than_the_buffered_deltas_is_a_gap() -> None:
    ob = book(Sequencing.FIRST_LAST)
    ob.apply(update(T0, [(98.0, 1.0)], first=200, last=210))
    out = ob.apply(update(T0 + 1, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=100))
    assert out.gap
    assert out.needs_snapshot
    assert out.books == ()


def test_deltas_after_a_stale_snapshot_bridge_the_next_one() -> None:
    ob = book(Sequencing.PREV_LAST)
    ob.apply(update(T0, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=100))
    ob.apply(update(T0 + 1, [(98.0, 1.0)], first=101, last=104, prev=100))
    gap = ob.apply(update(T0 + 2, [(97.0, 1.0)], first=110, last=112, prev=109))
    assert gap.gap
    ob.apply(update(T0 + 3, [(96.0, 1.0)], first=113, last=115, prev=112))
    stale = ob.apply(update(T0 + 4, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=100))
    assert stale.gap  # older than the buffered deltas: ask again, keep the deltas
    fresh = ob.apply(update(T0 + 5, [(99.0, 2.0)], [(101.0, 2.0)], snapshot=True, last=111))
    assert not fresh.gap
    assert ob.top(T0, T0).bids == [(99.0, 2.0), (97.0, 1.0), (96.0, 1.0)]
    assert ob.last_seq == 115


def test_binance_futures_chain_on_previous_update_id() -> None:
    ob = book(Sequencing.PREV_LAST)
    ob.apply(update(T0, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=100))
    assert not ob.apply(update(T0 + 1, [(98.0, 1.0)], first=95, last=104, prev=94)).gap
    assert not ob.apply(update(T0 + 2, first=105, last=109, prev=104)).gap
    assert ob.apply(update(T0 + 3, first=111, last=115, prev=110)).gap


def test_increment_sequencing() -> None:
    ob = book(Sequencing.INCREMENT)
    ob.apply(update(T0, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=7))
    assert not ob.apply(update(T0 + 1, last=8)).gap
    assert not ob.apply(update(T0 + 2, last=9)).gap
    assert ob.apply(update(T0 + 3, last=11)).gap


def test_keeper_separates_symbols_and_totals_stats() -> None:
    keeper = BookKeeper("binance", Sequencing.FIRST_LAST, depth=5, interval_ns=SECOND)
    keeper.apply(update(T0, [(1.0, 1.0)], [(2.0, 1.0)], snapshot=True, last=10, symbol="A-B"))
    keeper.apply(update(T0, [(1.0, 1.0)], [(2.0, 1.0)], snapshot=True, last=10, symbol="C-D"))
    keeper.apply(update(T0 + 1, first=12, last=12, symbol="A-B"))  # gap on A-B only
    assert keeper.books["A-B"].stats.gaps == 1
    assert keeper.books["C-D"].synced
    assert keeper.totals().gaps == 1
    keeper.reset()
    assert not keeper.books["C-D"].synced


def _crc(bids: list[LevelText], asks: list[LevelText]) -> int:
    """A checksum over the exact text of the top levels, like Kraken's and OKX's."""
    text = "|".join(f"{p}:{s}" for p, s in [*bids, *asks])
    return zlib.crc32(text.encode())


CHECKED = BookRules(Sequencing.INCREMENT, checksum=_crc, checksum_depth=2)


def _texted(ts: int, bids: list[LevelText], asks: list[LevelText], **kw: object) -> BookUpdate:
    u = update(
        ts,
        [(float(p), float(s)) for p, s in bids],
        [(float(p), float(s)) for p, s in asks],
        **kw,  # type: ignore[arg-type]
    )
    u.bid_texts, u.ask_texts = bids, asks
    return u


def test_checksum_over_exact_texts_is_verified_after_each_update() -> None:
    ob = OrderBook("okx", "BTC-USDT", CHECKED, 5, SECOND)
    snap = _texted(
        T0, [("100.0", "1.10"), ("99.5", "2")], [("101.0", "0.10")], snapshot=True, last=1
    )
    snap.checksum = _crc([("100.0", "1.10"), ("99.5", "2")], [("101.0", "0.10")])
    assert not ob.apply(snap).checksum_failed
    delta = _texted(T0 + 1, [("100.0", "0"), ("99.8", "3.00")], [], last=2)
    delta.checksum = _crc([("99.8", "3.00"), ("99.5", "2")], [("101.0", "0.10")])  # texts kept
    out = ob.apply(delta)
    assert not out.checksum_failed
    assert ob.stats.checksum_failures == 0
    assert ob.stats.checksums_verified == 2


def test_a_checksummed_delta_without_level_texts_fails_the_check_rather_than_raising() -> None:
    """The checksum is computed over the levels' texts; a new level that came without one
    cannot be verified, so the book is treated as wrong and resynced."""
    ob = OrderBook("okx", "BTC-USDT", CHECKED, 5, SECOND)
    ob.apply(_texted(T0, [("100.0", "1")], [("101.0", "1")], snapshot=True, last=1))
    delta = update(T0 + 1, [(100.5, 1.0)], [], last=2)  # no bid_texts
    delta.checksum = _crc([("100.5", "1"), ("100.0", "1")], [("101.0", "1")])
    out = ob.apply(delta)
    assert out.checksum_failed
    assert out.needs_snapshot
    assert not ob.synced


def test_a_checksum_mismatch_resets_the_book_and_asks_for_a_snapshot() -> None:
    ob = OrderBook("okx", "BTC-USDT", CHECKED, 5, SECOND)
    ob.apply(_texted(T0, [("100.0", "1")], [("101.0", "1")], snapshot=True, last=1))
    delta = _texted(T0 + 1, [("99.0", "1")], [], last=2)
    delta.checksum = 12345  # what a book that missed an update would see
    out = ob.apply(delta)
    assert out.checksum_failed
    assert out.needs_snapshot
    assert ob.stats.checksum_failures == 1
    assert not ob.synced
    assert ob.bids == {}


def test_a_fixed_depth_feed_is_truncated_to_its_depth() -> None:
    rules = BookRules(Sequencing.NONE, depth_limit=2)
    ob = OrderBook("kraken", "BTC-USD", rules, 5, SECOND)
    ob.apply(update(T0, [(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)], snapshot=True))
    ob.apply(update(T0 + 1, [(99.5, 1.0)], [(100.5, 1.0)]))  # pushes 99.0 and 102.0 out
    assert sorted(ob.bids) == [99.5, 100.0]
    assert sorted(ob.asks) == [100.5, 101.0]


def test_a_depth_named_by_the_frame_overrides_the_default() -> None:
    ob = OrderBook("kraken", "BTC-USD", BookRules(Sequencing.NONE, depth_limit=25), 5, SECOND)
    snapshot = update(T0, [(100.0, 1.0), (99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0)], snapshot=True)
    snapshot.depth_limit = 2  # a `book-2` capture keeps two levels, not the default 25
    ob.apply(snapshot)
    assert sorted(ob.bids) == [99.0, 100.0]


def test_a_delta_with_nothing_to_say_shares_one_immutable_outcome() -> None:
    """Nearly every delta is applied without a book to emit: it must cost no new object."""
    ob = book(Sequencing.NONE)
    ob.apply(update(T0, [(1.0, 1.0)], [(2.0, 1.0)], snapshot=True))
    first = ob.apply(update(T0 + 10 * MS, [(1.0, 2.0)]))
    second = ob.apply(update(T0 + 20 * MS, [(1.0, 3.0)]))
    assert first is second is NOTHING
    assert first.books == ()
    assert not first.gap
    assert not first.needs_snapshot


def test_a_resync_snapshot_says_so_in_its_outcome() -> None:
    ob = book(Sequencing.INCREMENT)
    assert not ob.apply(update(T0, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=1)).resynced
    again = ob.apply(update(T0 + 1, [(98.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=5))
    assert again.resynced
    assert ob.stats.resyncs == 1


def test_a_waiting_book_keeps_only_the_deltas_of_its_buffer_window() -> None:
    """While no snapshot comes (an endpoint down or banning), a book keeps the deltas of the
    last `buffer_ns` of receive time, not a full buffer of them; a snapshot from within the
    window still bridges onto what was kept, one from before it is a gap."""
    ob = OrderBook("binance", "BTC-USDT", Sequencing.PREV_LAST, 3, SECOND, buffer_ns=10 * SECOND)
    for i in range(60):  # one delta a second for a minute: ids 100 + 2i .. 101 + 2i
        first = 100 + 2 * i
        ob.apply(
            update(
                T0 + i * SECOND, [(90.0 + i % 5, 1.0)], first=first, last=first + 1, prev=first - 1
            )
        )
    kept = [delta.last_seq for delta in ob.buffer]
    assert kept == [101 + 2 * i for i in range(49, 60)]  # received at T0 + 49 s .. 59 s
    assert ob.stats.waiting == 60
    stale = ob.apply(
        update(T0 + 60 * SECOND, [(99.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=150)
    )
    assert stale.gap  # older than every delta kept
    out = ob.apply(update(T0 + 61 * SECOND, [(89.0, 1.0)], [(101.0, 1.0)], snapshot=True, last=212))
    assert not out.gap
    assert ob.last_seq == 219  # bridged by the delta 212 .. 213, then three more
    assert ob.buffer == deque()


def test_a_clock_that_steps_back_drops_no_buffered_delta() -> None:
    ob = OrderBook("binance", "BTC-USDT", Sequencing.PREV_LAST, 3, SECOND, buffer_ns=10 * SECOND)
    ob.apply(update(T0, [(90.0, 1.0)], first=100, last=101))
    ob.apply(update(T0 - 3600 * SECOND, [(91.0, 1.0)], first=102, last=103))
    assert [delta.last_seq for delta in ob.buffer] == [101, 103]


def test_the_keeper_gives_its_books_the_configured_window() -> None:
    keeper = BookKeeper("binance", Sequencing.PREV_LAST, depth=5, interval_ns=SECOND, buffer_ns=7)
    assert keeper.book("BTC-USDT").buffer_ns == 7


def test_ingest_gives_its_books_the_configured_window() -> None:
    venue = get_venue("binance")
    processor = processor_for(
        venue, venue.make_mapper(["BTC-USDT"]), IngestConfig(book_buffer_s=2.5), None
    )
    assert processor.books.book("BTC-USDT").buffer_ns == 2_500_000_000


# --- the sorted sides against a plain model -------------------------------------------------

_PRICES = st.sampled_from([float(p) for p in range(90, 111)] + [99.5, 100.25, 1e-8, 1e9])
_SIZES = st.sampled_from([0.0, 0.0, 1.0, 2.5, 1e-9])
_LEVELS = st.lists(st.tuples(_PRICES, _SIZES), max_size=12)
# (is it a snapshot, bids, asks, does it carry the feed's depth in the frame)
_UPDATES = st.lists(
    st.tuples(st.booleans(), _LEVELS, _LEVELS, st.sampled_from([None, None, 3, 8])),
    min_size=1,
    max_size=40,
)


def _model_apply(
    side: dict[float, float], levels: list[Level], snapshot: bool
) -> dict[float, float]:
    """The last level given for a price decides; a size of 0 removes it."""
    merged = {**({} if snapshot else side), **dict(levels)}
    return {price: size for price, size in merged.items() if size > 0}


def _best(side: dict[float, float], n: int, *, bids: bool) -> list[Level]:
    return sorted(side.items(), reverse=bids)[:n]


@given(_UPDATES, st.sampled_from([None, 5]), st.integers(1, 6))
def test_top_and_checksum_levels_are_those_of_a_plain_model(
    updates: list[tuple[bool, list[Level], list[Level], int | None]],
    rules_limit: int | None,
    depth: int,
) -> None:
    """Any mix of snapshots, deltas (new, changed, removed and absent levels, a price twice in
    one update) and depth truncation: the emitted top and the levels the checksum is computed
    over are the best of a dict kept the obvious way."""
    seen: list[tuple[list[LevelText], list[LevelText]]] = []

    def checksum(bids: list[LevelText], asks: list[LevelText]) -> int:
        seen.append((bids, asks))
        return 0

    rules = BookRules(Sequencing.NONE, checksum=checksum, checksum_depth=4, depth_limit=rules_limit)
    ob = OrderBook("binance", "BTC-USDT", rules, depth, interval_ns=SECOND)
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    limit = rules_limit
    snapshot_seen = False
    for step, (is_snapshot, bid_levels, ask_levels, frame_limit) in enumerate(updates):
        snapshot = is_snapshot or not snapshot_seen
        snapshot_seen = True
        texts = (
            [(repr(p), repr(s)) for p, s in bid_levels],
            [(repr(p), repr(s)) for p, s in ask_levels],
        )
        delta = BookUpdate(
            "binance", "BTC-USDT", T0 + step, T0 + step, bid_levels, ask_levels, snapshot,
            checksum=0, bid_texts=texts[0], ask_texts=texts[1], depth_limit=frame_limit,
        )  # fmt: skip
        ob.apply(delta)
        bids, asks = (
            _model_apply(bids, bid_levels, snapshot),
            _model_apply(asks, ask_levels, snapshot),
        )
        limit = frame_limit if frame_limit is not None else limit
        if limit is not None:
            bids, asks = dict(_best(bids, limit, bids=True)), dict(_best(asks, limit, bids=False))
        top = ob.top(T0, T0)
        assert top.bids == _best(bids, depth, bids=True)
        assert top.asks == _best(asks, depth, bids=False)
        assert seen[-1] == (
            [(repr(p), repr(s)) for p, s in _best(bids, 4, bids=True)],
            [(repr(p), repr(s)) for p, s in _best(asks, 4, bids=False)],
        )
