"""One frame through map -> books -> validate; the same path live, in replay and offline.

No I/O here: the result says what to publish, what to dead-letter and which books need a
snapshot, and the caller (the connection runner, or `normalize`) acts on it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from marketstream.config import IngestConfig
from marketstream.ingest.books import BookKeeper, invalid_level
from marketstream.schemas.records import Record
from marketstream.schemas.validation import InvalidRecordError, Limits, passes, validate
from marketstream.venues.base.mapper import BookUpdate, FrameError, Mapper
from marketstream.venues.base.venue import Venue


@dataclass(slots=True)
class Rejected:
    reason: str
    record: Record | None = None  # None: the frame itself could not be mapped
    mapper_error: bool = False  # the mapper raised something other than FrameError (a bug)


@dataclass(slots=True, init=False)
class Processed:
    records: list[Record]
    rejected: list[Rejected]
    gaps: list[str]  # symbols whose book lost its sequence
    checksum_failures: list[str]  # books the exchange disowned
    checksums_verified: int  # updates whose exchange checksum our book matched
    resynced: list[str]  # symbols re-synced from a snapshot
    snapshots_needed: list[str]

    # Written out: one is made per frame, and list literals cost less than the
    # `default_factory` calls a generated __init__ makes.
    def __init__(
        self,
        records: list[Record] | None = None,
        *,
        rejected: list[Rejected] | None = None,
        gaps: list[str] | None = None,
        checksum_failures: list[str] | None = None,
        checksums_verified: int = 0,
        resynced: list[str] | None = None,
        snapshots_needed: list[str] | None = None,
    ) -> None:
        self.records = [] if records is None else records
        self.rejected = [] if rejected is None else rejected
        self.gaps = [] if gaps is None else gaps
        self.checksum_failures = [] if checksum_failures is None else checksum_failures
        self.checksums_verified = checksums_verified
        self.resynced = [] if resynced is None else resynced
        self.snapshots_needed = [] if snapshots_needed is None else snapshots_needed


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
        except Exception as exc:  # a mapper bug must cost one frame, not the feed
            reason = f"the mapper failed on this frame: {type(exc).__name__}: {exc}"
            out.rejected.append(Rejected(reason, mapper_error=True))
            return out
        latest_ts = recv_ts + self.max_future_skew_ns
        known_symbols = self.known_symbols
        records = out.records
        for item in items:
            if isinstance(item, BookUpdate):
                self._book(item, recv_ts, out)
            elif passes(item, latest_ts, known_symbols):
                records.append(item)
            else:
                self._check(item, recv_ts, out)
        return out

    def process_update(self, update: BookUpdate) -> Processed:
        """A book update that did not come in a frame (a REST snapshot)."""
        out = Processed()
        self._book(update, update.recv_ts, out)
        return out

    def _book(self, update: BookUpdate, recv_ts: int, out: Processed) -> None:
        if self.known_symbols is not None and update.symbol not in self.known_symbols:
            out.rejected.append(
                Rejected(f"symbol {update.symbol!r} is not configured for {update.exchange}")
            )
            return
        bad = invalid_level(update)
        if bad is not None:
            out.rejected.append(
                Rejected(
                    f"{update.exchange} book update for {update.symbol}: level "
                    f"[{bad[0]!r}, {bad[1]!r}] is not a positive finite price with a finite "
                    "size >= 0"
                )
            )
            return
        book = self.books.book(update.symbol)
        stats = book.stats
        resyncs_before = stats.resyncs
        verified_before = stats.checksums_verified
        outcome = book.apply(update)
        out.checksums_verified += stats.checksums_verified - verified_before
        if outcome.gap:
            out.gaps.append(update.symbol)
        if outcome.checksum_failed:
            out.checksum_failures.append(update.symbol)
        if outcome.needs_snapshot:
            out.snapshots_needed.append(update.symbol)
        if stats.resyncs > resyncs_before:
            out.resynced.append(update.symbol)
        for record in outcome.books:
            self._check(record, recv_ts, out)

    def _check(self, record: Record, recv_ts: int, out: Processed) -> None:
        """The full validation, with its reason when the record fails."""
        try:
            validate(record, Limits(recv_ts, self.max_future_skew_ns, self.known_symbols))
        except InvalidRecordError as exc:
            out.rejected.append(Rejected(str(exc), record))
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
        ),
        max_future_skew_ns=ingest.max_future_skew_ms * 1_000_000,
        known_symbols=known_symbols,
    )
