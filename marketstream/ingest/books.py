"""L2 order books kept from snapshots and deltas, with sequence checks and top-N emission.

Each exchange numbers its book updates differently (see `Sequencing`); a delta that does not
follow the previous one is a gap: the book is cleared, the gap counted, and the keeper asks
for a new snapshot. Deltas that arrive while waiting are buffered and replayed onto the
snapshot, as the exchanges' "how to manage a local order book" procedures require. Only the
last `buffer_ns` of them by receive time are kept: a snapshot fetched now reflects the book
of about now, so older deltas can never bridge it, and a snapshot endpoint that stays down
(a ban, an outage) must not grow memory by a full buffer of every symbol's deltas.

Where the exchange sends a checksum of its top levels, the book keeps each level's exact
text beside the float and verifies the checksum after every update; a mismatch is handled
like a gap. Feeds that keep a fixed depth are truncated to it.

Books are emitted on exchange time, not the wall clock, so a replay or an offline
`normalize` of the same frames yields the same book records.

Each side keeps its prices sorted in a list beside its price -> size dict, so the top levels
an emission or a checksum reads are a slice, not a pass over the whole book (ranking a
Coinbase book of a few hundred levels a side took 17-45 us per emission, and OKX's and
Kraken's checksums rank both sides after every update). A level changes the sorted list only
when it is new or removed. The book holds only finite prices: the processor refuses an update
with any other (`invalid_level`) before the book sees it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from marketstream.schemas.records import Book, Level
from marketstream.venues.base.mapper import BookUpdate, LevelText
from marketstream.venues.base.venue import BookRules, Sequencing

MAX_BUFFERED = 10_000  # deltas kept per symbol while waiting for a snapshot, at most
BUFFER_NS = 30 * 1_000_000_000  # ...and only those received in the last 30 s (`book_buffer_s`)


class _Step(Enum):
    APPLY = "apply"
    SKIP = "skip"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class BookOutcome:
    """What applying one update produced. Immutable: most updates share `NOTHING`."""

    books: tuple[Book, ...] = ()
    gap: bool = False  # the update did not follow the previous one: the book was reset
    checksum_failed: bool = False  # the book disagreed with the exchange's checksum: reset
    needs_snapshot: bool = False  # ask the exchange for a new snapshot of this symbol
    checksum_verified: bool = False  # the exchange's checksum matched the book after it
    resynced: bool = False  # a snapshot after the first was applied


# An update applied (or buffered, or skipped) with nothing to say: nearly every delta.
NOTHING: Final = BookOutcome()
_VERIFIED: Final = BookOutcome(checksum_verified=True)


@dataclass(slots=True)
class BookStats:
    gaps: int = 0
    checksums_verified: int = 0
    checksum_failures: int = 0
    resyncs: int = 0  # snapshots applied after the first
    waiting: int = 0  # deltas received before any usable snapshot (buffered or dropped)
    emitted: int = 0


class OrderBook:
    """One instrument's book; `apply` returns what to publish and whether a snapshot is due."""

    def __init__(
        self,
        exchange: str,
        symbol: str,
        rules: BookRules | Sequencing,
        depth: int,
        interval_ns: int,
        *,
        buffer_ns: int = BUFFER_NS,
    ) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.buffer_ns = buffer_ns
        self.rules = rules if isinstance(rules, BookRules) else BookRules(rules)
        self.sequencing = self.rules.sequencing
        self.keeps_texts = self.rules.checksum is not None
        self.depth_limit = self.rules.depth_limit
        self.bid_texts: dict[float, LevelText] = {}
        self.ask_texts: dict[float, LevelText] = {}
        self.depth = depth
        self.interval_ns = interval_ns
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        # The prices of each side in ascending order of their key, best last: bid prices as
        # they are, ask prices negated (so that the best ask, too, is at the end, where most
        # changes land and an insort moves the fewest entries).
        self._bid_keys: list[float] = []
        self._ask_keys: list[float] = []
        self.synced = False
        self.snapshot_seq: int | None = None
        self.last_seq: int | None = None
        self.applied = 0  # local update counter: the `seq` of feeds without sequence numbers
        self.next_emit_ts = 0
        self.buffer: deque[BookUpdate] = deque(maxlen=MAX_BUFFERED)
        self.stats = BookStats()
        self._snapshots = 0

    def apply(self, update: BookUpdate) -> BookOutcome:
        if update.is_snapshot:
            return self._apply_snapshot(update)
        if not self.synced:
            self.stats.waiting += 1
            if self.sequencing is not Sequencing.NONE:
                self._buffer(update)  # may bridge onto a REST snapshot still to come
            return NOTHING
        if self.sequencing is not Sequencing.NONE:  # without sequence numbers every delta applies
            step = self._step(update)
            if step is not _Step.APPLY:
                return self._not_applied(step, update)
        self._apply_levels(update)
        verified = False
        if self.keeps_texts:
            matches = self._checksum_matches(update)
            if matches is False:
                return self._checksum_failure(resynced=False)
            verified = matches is True
        # Emission is due at most once an interval: the comparison here, not in a call.
        if update.ts < self.next_emit_ts and update.ts >= self.next_emit_ts - self.interval_ns:
            return _VERIFIED if verified else NOTHING
        return BookOutcome(self._emit(update), checksum_verified=verified)

    def _not_applied(self, step: _Step, update: BookUpdate) -> BookOutcome:
        if step is _Step.SKIP:
            return NOTHING
        outcome = self._gap(resynced=False)
        self._buffer(update)  # the next snapshot has to bridge onto this delta
        return outcome

    def _buffer(self, update: BookUpdate) -> None:
        """Keep a delta for the snapshot to come, dropping those received more than
        `buffer_ns` before it (a clock that stepped back drops nothing)."""
        buffer = self.buffer
        buffer.append(update)
        oldest = update.recv_ts - self.buffer_ns
        while buffer[0].recv_ts < oldest:
            buffer.popleft()

    def _apply_snapshot(self, update: BookUpdate) -> BookOutcome:
        self.bids, self.asks = _side_of(update.bids), _side_of(update.asks)
        self._bid_keys = sorted(self.bids)
        self._ask_keys = sorted(-price for price in self.asks)
        if self.keeps_texts:
            self.bid_texts, self.ask_texts = {}, {}
            _merge_texts(self.bid_texts, update.bids, update.bid_texts)
            _merge_texts(self.ask_texts, update.asks, update.ask_texts)
        self._truncate(update)
        self.snapshot_seq = self.last_seq = update.last_seq
        self.synced = True
        self._snapshots += 1
        resynced = self._snapshots > 1
        if resynced:
            self.stats.resyncs += 1
        buffered, self.buffer = list(self.buffer), deque(maxlen=MAX_BUFFERED)
        for position, delta in enumerate(buffered):
            step = self._step(delta)
            if step is _Step.GAP:
                # The snapshot is older than these deltas: keep them for the next snapshot.
                outcome = self._gap(resynced=resynced)
                self.buffer.extend(buffered[position:])
                return outcome
            if step is _Step.APPLY:
                self._apply_levels(delta)
        matches = self._checksum_matches(update)
        if matches is False:
            return self._checksum_failure(resynced=resynced)
        return BookOutcome(self._emit(update), checksum_verified=matches is True, resynced=resynced)

    def _bridges_snapshot(self, delta: BookUpdate) -> bool:
        """The first delta applied on a snapshot must straddle its last update id."""
        snapshot = self.snapshot_seq
        assert snapshot is not None
        assert delta.last_seq is not None
        if self.sequencing is Sequencing.FIRST_LAST:
            first = delta.first_seq if delta.first_seq is not None else delta.last_seq
            return first <= snapshot + 1 <= delta.last_seq
        if self.sequencing is Sequencing.PREV_LAST:
            first = delta.first_seq if delta.first_seq is not None else delta.last_seq
            return first <= snapshot <= delta.last_seq or delta.prev_seq == snapshot
        return delta.last_seq == snapshot + 1

    def _step(self, delta: BookUpdate) -> _Step:
        """Whether a delta applies next, is already in the book, or leaves a gap."""
        if self.sequencing is Sequencing.NONE or self.last_seq is None:
            return _Step.APPLY
        if delta.last_seq is None:
            return _Step.GAP
        if self.last_seq == self.snapshot_seq:  # nothing applied since the snapshot yet
            if delta.last_seq <= self.last_seq:
                return _Step.SKIP  # older than the snapshot: already contained in it
            return _Step.APPLY if self._bridges_snapshot(delta) else _Step.GAP
        if self.sequencing is Sequencing.FIRST_LAST:
            follows = delta.first_seq == self.last_seq + 1
        elif self.sequencing is Sequencing.PREV_LAST:
            follows = delta.prev_seq == self.last_seq
        else:
            follows = delta.last_seq == self.last_seq + 1
        return _Step.APPLY if follows else _Step.GAP

    def reset(self) -> None:
        """Forget the book's levels and sequence; the next snapshot starts it again."""
        self.bids.clear()
        self.asks.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()
        self.bid_texts.clear()
        self.ask_texts.clear()
        self.synced = False
        self.last_seq = self.snapshot_seq = None

    def _gap(self, *, resynced: bool) -> BookOutcome:
        self.reset()
        self.stats.gaps += 1
        return BookOutcome(gap=True, needs_snapshot=True, resynced=resynced)

    def _checksum_failure(self, *, resynced: bool) -> BookOutcome:
        self.reset()
        self.stats.checksum_failures += 1
        return BookOutcome(checksum_failed=True, needs_snapshot=True, resynced=resynced)

    def _apply_levels(self, delta: BookUpdate) -> None:
        _merge(self.bids, self._bid_keys, delta.bids, 1.0)
        _merge(self.asks, self._ask_keys, delta.asks, -1.0)
        if self.keeps_texts:
            _merge_texts(self.bid_texts, delta.bids, delta.bid_texts)
            _merge_texts(self.ask_texts, delta.asks, delta.ask_texts)
        if self.depth_limit is not None or delta.depth_limit is not None:
            self._truncate(delta)
        if delta.last_seq is not None:
            self.last_seq = delta.last_seq
        self.applied += 1

    def _truncate(self, update: BookUpdate) -> None:
        """Feeds that keep a fixed depth send no removal for levels pushed out of it."""
        if update.depth_limit is not None:
            self.depth_limit = update.depth_limit
        limit = self.depth_limit
        if limit is None:
            return
        for side, keys, texts, sign in (
            (self.bids, self._bid_keys, self.bid_texts, 1.0),
            (self.asks, self._ask_keys, self.ask_texts, -1.0),
        ):
            excess = len(keys) - limit
            if excess > 0:  # the worst levels are the first keys
                for key in keys[:excess]:
                    price = key * sign
                    del side[price]
                    texts.pop(price, None)
                del keys[:excess]

    def _checksum_matches(self, update: BookUpdate) -> bool | None:
        """None: nothing to verify (no checksum rule, or none in this update)."""
        checksum = self.rules.checksum
        if checksum is None or update.checksum is None:
            return None
        n = self.rules.checksum_depth
        bid_texts, ask_texts = self.bid_texts, self.ask_texts  # the same prices as the sides
        try:
            bids = [bid_texts[key] for key in self._bid_keys[: -n - 1 : -1]]
            asks = [ask_texts[-key] for key in self._ask_keys[: -n - 1 : -1]]
        except KeyError:  # an update without its levels' texts: the book cannot be verified
            return False
        matches = (checksum(bids, asks) & 0xFFFFFFFF) == (update.checksum & 0xFFFFFFFF)
        if matches:
            self.stats.checksums_verified += 1
        return matches

    def _emit(self, update: BookUpdate) -> tuple[Book]:
        """The book now, on the next interval's cadence. A delta is emitted only when its
        time reached the cadence (`apply` checks) or fell behind it by more than an interval:
        a snapshot stamped with the receive clock (feeds that send no time with it) can run
        ahead of the exchange's clock, and then the cadence re-anchors on exchange time
        instead of waiting for the clocks to meet. A snapshot is always emitted."""
        self.next_emit_ts = (update.ts // self.interval_ns + 1) * self.interval_ns
        self.stats.emitted += 1
        return (self.top(update.ts, update.recv_ts),)

    def top(self, ts: int, recv_ts: int) -> Book:
        """The best `depth` levels per side as a Book record."""
        bid_sizes, ask_sizes = self.bids, self.asks
        depth = self.depth
        bids = [(price, bid_sizes[price]) for price in self._bid_keys[: -depth - 1 : -1]]
        asks = [(-key, ask_sizes[-key]) for key in self._ask_keys[: -depth - 1 : -1]]
        seq = self.last_seq if self.last_seq is not None else self.applied
        return Book(self.exchange, self.symbol, ts, recv_ts, seq, bids, asks, True)


def _merge_texts(
    texts: dict[float, LevelText], levels: list[Level], level_texts: list[LevelText] | None
) -> None:
    if level_texts is None:
        return
    for (price, size), text in zip(levels, level_texts, strict=True):
        if size > 0:
            texts[price] = text
        else:
            texts.pop(price, None)


def _side_of(levels: Iterable[Level]) -> dict[float, float]:
    """A snapshot's side, read in order as a delta onto nothing (a size of 0 removes a price
    listed before it), as its level texts are."""
    side: dict[float, float] = {}
    for price, size in levels:
        if size > 0:
            side[price] = size
        else:
            side.pop(price, None)
    return side


def _merge(
    side: dict[float, float], keys: list[float], levels: Iterable[Level], sign: float
) -> None:
    """Apply levels to a side and its sorted keys (`price * sign`): a size of 0 removes."""
    for price, size in levels:
        if size > 0:
            if price not in side:
                insort(keys, price * sign)
            side[price] = size
        elif side.pop(price, None) is not None:
            del keys[bisect_left(keys, price * sign)]


class BookKeeper:
    """The books of one connection, created on first sight of a symbol."""

    def __init__(
        self,
        exchange: str,
        rules: BookRules | Sequencing,
        *,
        depth: int,
        interval_ns: int,
        buffer_ns: int = BUFFER_NS,
    ) -> None:
        self.exchange = exchange
        self.rules = rules
        self.depth = depth
        self.interval_ns = interval_ns
        self.buffer_ns = buffer_ns
        self.books: dict[str, OrderBook] = {}

    def book(self, symbol: str) -> OrderBook:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = OrderBook(
                self.exchange,
                symbol,
                self.rules,
                self.depth,
                self.interval_ns,
                buffer_ns=self.buffer_ns,
            )
        return book

    def apply(self, update: BookUpdate) -> BookOutcome:
        return self.book(update.symbol).apply(update)

    def reset(self) -> None:
        """Forget every book (after a reconnect the feed or REST sends fresh snapshots)."""
        for book in self.books.values():
            book.reset()
            book.buffer.clear()

    def totals(self) -> BookStats:
        total = BookStats()
        for book in self.books.values():
            total.gaps += book.stats.gaps
            total.checksum_failures += book.stats.checksum_failures
            total.checksums_verified += book.stats.checksums_verified
            total.resyncs += book.stats.resyncs
            total.waiting += book.stats.waiting
            total.emitted += book.stats.emitted
        return total


def invalid_level(update: BookUpdate) -> tuple[float, float] | None:
    """The first level no book can hold (a price that is not finite and positive, a size that
    is not finite and >= 0), or None. `float("nan")` parses: such a level must not reach the
    book, where it would poison every record built from it."""
    for levels in (update.bids, update.asks):
        for price, size in levels:
            if not (0.0 < price < math.inf and 0.0 <= size < math.inf):
                return price, size
    return None
