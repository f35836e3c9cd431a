"""One frame through map -> books -> validate; the same path live, in replay and offline.

No I/O here: the result says what to publish, what to dead-letter and which books need a
snapshot, and the caller (the connection runner, or `normalize`) acts on it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from marketstream.config import IngestConfig
from marketstream.ingest.books import NOTHING, BookKeeper, invalid_level
from marketstream.schemas.records import Record
from marketstream.schemas.validation import PASSES, InvalidRecordError, Limits, validate
from marketstream.venues.base.mapper import BookUpdate, FrameError, Item, Mapper
from marketstream.venues.base.venue import Venue


@dataclass(slots=True)
class Rejected:
    reason: str
    record: Record | None = None  # None: the frame itself could not be mapped
    mapper_error: bool = False  # the mapper raised something other than FrameError (a bug)


# Shared by every Processed without such an outcome: a frame that only yields good records
# (nearly all) then costs one small object, not seven lists.
_NONE: Final[tuple[()]] = ()


class Processed(msgspec.Struct, gc=False):
    """What one frame produced. Read-only for the caller; the outcomes other than `records`
    are empty tuples unless the frame produced some. A Struct: one is made per frame, in C.
    `gc=False`: it holds lists of records, never itself."""

    records: list[Record]
    rejected: Sequence[Rejected] = _NONE
    gaps: Sequence[str] = _NONE  # symbols whose book lost its sequence
    checksum_failures: Sequence[str] = _NONE  # books the exchange disowned
    checksums_verified: int = 0  # updates whose exchange checksum our book matched
    resynced: Sequence[str] = _NONE  # symbols re-synced from a snapshot
    snapshots_needed: Sequence[str] = _NONE


class _Outcomes:
    """What a frame with book updates or bad records produced; a list is made only for an
    outcome that occurs (a book delta usually yields none of them)."""

    __slots__ = (
        "checksum_failures",
        "checksums_verified",
        "gaps",
        "records",
        "rejected",
        "resynced",
        "snapshots_needed",
    )

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.rejected: list[Rejected] | None = None
        self.gaps: list[str] | None = None
        self.checksum_failures: list[str] | None = None
        self.checksums_verified = 0
        self.resynced: list[str] | None = None
        self.snapshots_needed: list[str] | None = None

    def reject(self, rejected: Rejected) -> None:
        if self.rejected is None:
            self.rejected = [rejected]
        else:
            self.rejected.append(rejected)

    def processed(self) -> Processed:
        """Empty outcomes as the shared empty tuple, as the fast path leaves them."""
        return Processed(
            self.records,
            self.rejected or _NONE,
            gaps=self.gaps or _NONE,
            checksum_failures=self.checksum_failures or _NONE,
            checksums_verified=self.checksums_verified,
            resynced=self.resynced or _NONE,
            snapshots_needed=self.snapshots_needed or _NONE,
        )


def _add(symbols: list[str] | None, symbol: str) -> list[str]:
    if symbols is None:
        return [symbol]
    symbols.append(symbol)
    return symbols


def _not_a_record(item: object, latest_ts: int, known_symbols: object) -> bool:
    return False


# The record predicates, and book updates sent the item-by-item way without an exception.
_PASSES: Final = {**PASSES, BookUpdate: _not_a_record}


class FrameProcessor:
    """Maps, keeps books and validates for one connection (its books are its state)."""

    def __init__(
        self,
        mapper: Mapper,
        books: BookKeeper,
        *,
        max_future_skew_ns: int,
        known_symbols: Collection[str] | None,
    ) -> None:
        self.mapper = mapper
        self.books = books
        self.max_future_skew_ns = max_future_skew_ns
        self.known_symbols = known_symbols

    def process(self, frame: str | bytes, recv_ts: int) -> Processed:
        try:
            items = self.mapper(frame, recv_ts)
        except FrameError as exc:
            return Processed([], [Rejected(str(exc))])
        except Exception as exc:  # a mapper bug must cost one frame, not the feed
            reason = f"the mapper failed on this frame: {type(exc).__name__}: {exc}"
            return Processed([], [Rejected(reason, mapper_error=True)])
        # The common case in one pass: every item a record that passes, published as the
        # mapper's own (fresh) list. Anything else goes through `_each`, item by item.
        latest_ts = recv_ts + self.max_future_skew_ns
        known_symbols = self.known_symbols
        try:
            for item in items:
                if not _PASSES[type(item)](item, latest_ts, known_symbols):
                    return self._each(items, recv_ts)
        except (KeyError, TypeError, ValueError):  # not an item, or a malformed field
            return self._each(items, recv_ts)
        return Processed(items)  # type: ignore[arg-type]  # all of them records, checked above

    def _each(self, items: list[Item], recv_ts: int) -> Processed:
        out = _Outcomes()
        for item in items:
            if isinstance(item, BookUpdate):
                self._book(item, recv_ts, out)
            else:
                self._check(item, recv_ts, out)
        return out.processed()

    def process_update(self, update: BookUpdate) -> Processed:
        """A book update that did not come in a frame (a REST snapshot)."""
        out = _Outcomes()
        self._book(update, update.recv_ts, out)
        return out.processed()

    def _book(self, update: BookUpdate, recv_ts: int, out: _Outcomes) -> None:
        symbol = update.symbol
        if self.known_symbols is not None and symbol not in self.known_symbols:
            out.reject(Rejected(f"symbol {symbol!r} is not configured for {update.exchange}"))
            return
        bad = invalid_level(update)
        if bad is not None:
            out.reject(
                Rejected(
                    f"{update.exchange} book update for {symbol}: level "
                    f"[{bad[0]!r}, {bad[1]!r}] is not a positive finite price with a finite "
                    "size >= 0"
                )
            )
            return
        book = self.books.books.get(symbol)
        if book is None:
            book = self.books.book(symbol)
        outcome = book.apply(update)
        if outcome is NOTHING:  # nearly every delta
            return
        if outcome.checksum_verified:
            out.checksums_verified += 1
        if outcome.gap:
            out.gaps = _add(out.gaps, symbol)
        if outcome.checksum_failed:
            out.checksum_failures = _add(out.checksum_failures, symbol)
        if outcome.needs_snapshot:
            out.snapshots_needed = _add(out.snapshots_needed, symbol)
        if outcome.resynced:
            out.resynced = _add(out.resynced, symbol)
        for record in outcome.books:
            self._check(record, recv_ts, out)

    def _check(self, record: Record, recv_ts: int, out: _Outcomes) -> None:
        """The full validation, with its reason when the record fails."""
        try:
            validate(record, Limits(recv_ts, self.max_future_skew_ns, self.known_symbols))
        except InvalidRecordError as exc:
            out.reject(Rejected(str(exc), record))
            return
        out.records.append(record)


def processor_for(
    venue: Venue, mapper: Mapper, ingest: IngestConfig, known_symbols: Collection[str] | None
) -> FrameProcessor:
    """A processor with the configured books and skew: live and offline use the same."""
    return FrameProcessor(
        mapper,
        BookKeeper(
            venue.name,
            venue.book_rules,
            depth=ingest.book_depth,
            interval_ns=ingest.book_interval_ms * 1_000_000,
            buffer_ns=round(ingest.book_buffer_s * 1e9),
        ),
        max_future_skew_ns=ingest.max_future_skew_ms * 1_000_000,
        known_symbols=known_symbols,
    )
