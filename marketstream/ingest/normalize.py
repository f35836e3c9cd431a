"""`marketstream normalize`: a recording through the live ingest path, records to JSON lines.

The frames go through the same `FrameProcessor` as live ingest (mapper, books, validation),
with the recorded receive times, so the output is what ingest would have published.

The mappers' instruments are the recording's own: its recorded instrument answers (`record`
writes them first) replace the shipped snapshot's records of the same instruments, so a
recording normalizes offline as it was received. Without answers, the shipped snapshot (or
the instruments the caller gives) is the catalog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from marketstream.config import IngestConfig
from marketstream.errors import MarketStreamError
from marketstream.ingest.processor import FrameProcessor, Processed, Rejected, processor_for
from marketstream.instruments.catalog import Catalog
from marketstream.instruments.recorded import is_instrument_answer, parse_answer
from marketstream.instruments.snapshot import load_shipped, overlay
from marketstream.replay.recording_format import REST_SCHEMES, RecordedFrame, read_recording
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import SPEC_BY_CLASS, SPECS
from marketstream.schemas.records import Instrument
from marketstream.venues.base.mapper import Mapper
from marketstream.venues.base.venue import Venue
from marketstream.venues.registry import get_venue

SHOWN_REASONS = 5
_CHUNK_LINES = 128  # encoded records per write; far more costs page faults (freed memory)


@dataclass(slots=True)
class NormalizeSummary:
    frames: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count
    books_waiting: int = 0  # book deltas never applied for lack of a snapshot
    gaps: int = 0
    checksums_verified: int = 0
    checksum_failures: int = 0
    instrument_answers: int = 0  # recorded instrument lists the mappers were given
    instruments: int = 0  # instruments of this exchange the mappers knew at the end

    def lines(self, exchange: str) -> list[str]:
        per_type = ", ".join(
            f"{spec.record_type} {self.counts[spec.record_type]}" for spec in SPECS
        )
        lines = [f"{exchange}: {self.frames} frames -> {per_type}"]
        total_rejected = sum(self.rejected.values())
        lines.append(f"rejected (would go to md:dlq): {total_rejected}")
        for reason, count in self.rejected.most_common(SHOWN_REASONS):
            lines.append(f"  {count} x {reason}")
        if self.gaps:
            lines.append(f"book sequence gaps: {self.gaps}")
        if self.checksums_verified or self.checksum_failures:
            lines.append(
                f"book checksums verified: {self.checksums_verified}, "
                f"failed: {self.checksum_failures}"
            )
        source = "recorded answers" if self.instrument_answers else "the shipped snapshot"
        lines.append(f"instruments: {self.instruments} (from {source})")
        if self.books_waiting:
            lines.append(
                f"book updates without a snapshot to apply to: {self.books_waiting} "
                "(this feed sends deltas only; `marketstream record` captures REST snapshots)"
            )
        return lines


def normalize_recording(
    path: Path,
    exchange_name: str,
    out: BinaryIO,
    ingest: IngestConfig,
    *,
    instruments: Sequence[Instrument] | None = None,
    symbols: Sequence[str] = (),
) -> NormalizeSummary:
    """`instruments`: the catalog before the recording's own answers (default: the shipped
    snapshot). `symbols`: the configured ones, named as live ingest names them (exactly,
    without metadata) where the catalog does not list them."""
    exchange = get_venue(exchange_name)
    base = Catalog(load_shipped() if instruments is None else instruments)
    known = base.for_exchange(exchange.name)
    recorded_instruments: list[Instrument] = []
    mappers: dict[str, Mapper] = {}  # by recorded URL, where the URL tells the market

    def mapper_for(url: str) -> Mapper:
        if exchange.mapper_for_recording is None:
            url = ""
        mapper = mappers.get(url)
        if mapper is None:
            make = exchange.mapper_for_recording
            mapper = mappers[url] = (
                make(url, known, symbols)
                if make is not None
                else exchange.make_mapper(symbols, known)
            )
        return mapper

    # a recording may hold any instrument: no known symbols
    processor = processor_for(exchange, mapper_for(""), ingest, None)
    summary = NormalizeSummary()
    per_class: dict[type, int] = {}  # records by class: the summary's counts come from it
    output = _Output(out)
    try:
        for recorded in read_recording(path):
            if summary.frames == 0 and recorded.exchange != exchange.name:
                raise MarketStreamError(
                    f"{path} was recorded from {recorded.exchange!r}, not {exchange.name!r}: "
                    f"pass --exchange {recorded.exchange}"
                )
            summary.frames += 1
            if recorded.url.startswith(REST_SCHEMES):
                if is_instrument_answer(exchange, recorded.url):
                    try:
                        recorded_instruments.extend(parse_answer(exchange, recorded))
                    except ValueError as exc:
                        summary.rejected[str(exc)] += 1
                        continue
                    summary.instrument_answers += 1
                    known = overlay(base, recorded_instruments).for_exchange(exchange.name)
                    mappers.clear()  # the next frame's mapper is made with these instruments
                    continue
                processor.mapper = mapper_for(recorded.url)
                processed = _rest_snapshot(exchange, processor, recorded, known, symbols)
            else:
                processor.mapper = mapper_for(recorded.url)
                processed = processor.process(recorded.frame, recorded.recv_ns)
            _tally(processed, summary, output, per_class)
    finally:
        output.flush()  # what was normalized before an error is written, as it came
        for cls, count in per_class.items():
            summary.counts[SPEC_BY_CLASS[cls].record_type] += count
    summary.instruments = len(known)
    summary.books_waiting = sum(
        book.stats.waiting for book in processor.books.books.values() if not book.synced
    )
    return summary


def _tally(
    processed: Processed, summary: NormalizeSummary, output: _Output, per_class: dict[type, int]
) -> None:
    """One frame's records to the output, its outcomes to the summary."""
    for record in processed.records:
        output.add(encode_record(record))
        cls = type(record)
        per_class[cls] = per_class.get(cls, 0) + 1
    if processed.rejected:
        for rejected in processed.rejected:
            summary.rejected[rejected.reason] += 1
    if processed.gaps:
        summary.gaps += len(processed.gaps)
    summary.checksums_verified += processed.checksums_verified
    if processed.checksum_failures:
        summary.checksum_failures += len(processed.checksum_failures)


class _Output:
    """Encoded records, written a chunk at a time: `out` may be unbuffered (stdout under
    PYTHONUNBUFFERED is), and two writes per record would be two system calls."""

    __slots__ = ("_out", "_pending")

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pending: list[bytes] = []

    def add(self, line: bytes) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) >= _CHUNK_LINES:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._pending.append(b"")  # the last line's newline
            self._out.write(b"\n".join(self._pending))
            self._pending = []


def _rest_snapshot(
    exchange: Venue,
    processor: FrameProcessor,
    recorded: RecordedFrame,
    instruments: Sequence[Instrument],
    symbols: Sequence[str],
) -> Processed:
    """A recorded REST book snapshot, applied as live ingest would after fetching it."""
    if exchange.map_snapshot is None or exchange.snapshot_symbol is None:
        return Processed([], [Rejected(f"{exchange.name} has no REST snapshots")])
    try:
        symbol = exchange.snapshot_symbol(recorded.url, instruments, symbols)
        update = exchange.map_snapshot(recorded.frame, symbol, recorded.recv_ns, instruments)
    except ValueError as exc:  # FrameError included
        return Processed([], [Rejected(f"snapshot {recorded.url}: {exc}")])
    return processor.process_update(update)
