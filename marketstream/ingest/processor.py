"""One frame through map -> books -> validate; the same path live, in replay and offline.

No I/O here: the result says what to publish, what to dead-letter and which books need a
snapshot, and the caller (the connection runner, or `normalize`) acts on it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from marketstream.ingest.books import BookKeeper
from marketstream.ingest.events import BookUpdate, FrameError, Mapper
from marketstream.schemas.records import Record
from marketstream.schemas.validation import InvalidRecordError, Limits, validate


@dataclass(slots=True)
class Rejected:
    reason: str
    record: Record | None = None  # None: the frame itself could not be mapped


@dataclass(slots=True)
class Processed:
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)  # symbols whose book lost its sequence
    checksum_failures: list[str] = field(default_factory=list)  # books the exchange disowned
    checksums_verified: int = 0  # updates whose exchange checksum our book matched
    resynced: list[str] = field(default_factory=list)  # symbols re-synced from a snapshot
    snapshots_needed: list[str] = field(default_factory=list)


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
        out = Processed()
        try:
            items = self.mapper(frame, recv_ts)
        except FrameError as exc:
            out.rejected.append(Rejected(str(exc)))
            return out
        limits = Limits(recv_ts, self.max_future_skew_ns, self.known_symbols)
        for item in items:
            if isinstance(item, BookUpdate):
                self._book(item, limits, out)
            else:
                self._check(item, limits, out)
        return out

    def process_update(self, update: BookUpdate) -> Processed:
        """A book update that did not come in a frame (a REST snapshot)."""
        out = Processed()
        self._book(update, Limits(update.recv_ts, self.max_future_skew_ns, self.known_symbols), out)
        return out

    def _book(self, update: BookUpdate, limits: Limits, out: Processed) -> None:
        if self.known_symbols is not None and update.symbol not in self.known_symbols:
            out.rejected.append(
                Rejected(f"symbol {update.symbol!r} is not configured for {update.exchange}")
            )
            return
        book = self.books.book(update.symbol)
        resyncs_before = book.stats.resyncs
        verified_before = book.stats.checksums_verified
        outcome = book.apply(update)
        out.checksums_verified += book.stats.checksums_verified - verified_before
        if outcome.gap:
            out.gaps.append(update.symbol)
        if outcome.checksum_failed:
            out.checksum_failures.append(update.symbol)
        if outcome.needs_snapshot:
            out.snapshots_needed.append(update.symbol)
        if book.stats.resyncs > resyncs_before:
            out.resynced.append(update.symbol)
        for record in outcome.books:
            self._check(record, limits, out)

    @staticmethod
    def _check(record: Record, limits: Limits, out: Processed) -> None:
        try:
            validate(record, limits)
        except InvalidRecordError as exc:
            out.rejected.append(Rejected(str(exc), record))
            return
        out.records.append(record)
