"""The hot writer's QuestDB side: decode a batch, write it over ILP/HTTP, isolate bad rows.

The `questdb` client's flush blocks (and releases the GIL), so only the flush and the
`SELECT 1` probe run on the writer's worker thread; building the rows runs on the event loop.
Python work on a second thread would take the GIL from the loop in 5 ms turns, and the next
batch's XREADGROUP, which should overlap the flush, would wait on it instead.

QuestDB takes an ILP/HTTP request as a whole. When a row is invalid (a type conflict, a
timestamp out of range) it answers HTTP 400 with JSON (`"code":"invalid"`, the first bad
`line`) and commits nothing of the request. The bad rows are found by writing the batch again
in parts, split at the line the server named (else in halves), until each rejected row stands
alone; parts written twice change nothing, thanks to the tables' dedup keys.

Any other failure (refused connection, reset, timeout, 5xx) is judged by asking QuestDB
`SELECT 1`: if it does not answer, QuestDB is away (`QuestDBUnavailableError`: the caller
retries the whole batch later, nothing counted against the rows). If it answers, the request
itself was the trouble (a row larger than QuestDB takes resets the connection, for one): the
part is split in halves like a rejected one, and a row that fails alone is `refused` (the
writer counts a delivery against it and dead-letters it past `hot.max_deliveries`). A write
in which nothing went through stops at the first refused row (the rest `unattempted`): the
fault may be QuestDB's, so it costs one row's delivery per attempt, not a request per row.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa
from questdb import QuestDBError, QuestDBErrorCode, Sender

from marketstream.schemas.columns import SPECS
from marketstream.schemas.entry_structs import EntryRecord
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_rows import TableRows, table_rows, write_table
from marketstream.writers.hot_writer_metrics import HotWriterMetrics, observe_many

DEFAULT_ROW_BYTES: Final = 256  # a first guess of a row's ILP size, before one was written
ILP_PROTOCOL_VERSION: Final = 2  # binary doubles and arrays (book sides); no /settings probe
# Errors of Sender.dataframe that are about the rows' values, never the sender or the server.
_ROW_ERROR_CODES: Final = frozenset(
    {
        QuestDBErrorCode.InvalidName,
        QuestDBErrorCode.InvalidUtf8,
        QuestDBErrorCode.InvalidTimestamp,
        QuestDBErrorCode.ArrayError,
    }
)


class QuestDBUnavailableError(Exception):
    """QuestDB did not take a write for a reason unrelated to the rows: retry them later."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """QuestDB's answer to rows it refused: its message and the first bad line (1-based)."""

    message: str
    line: int | None
    refused: bool = False  # not a rejection: QuestDB answers, but not to this request


def rejection_of(exc: QuestDBError) -> Rejection | None:
    """The server's rejection of the rows in a failed flush, or None for any other failure.

    The client puts the server's JSON answer in the message; only `"code":"invalid"` (HTTP
    400: parse errors, type conflicts, out-of-range values) blames the rows.
    """
    text = str(exc)
    start = text.find("{")
    if start < 0:
        return None
    try:
        answer = json.loads(text[start:])
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("code") != "invalid":
        return None
    message = " ".join(str(answer.get("message") or text).split())
    line = answer.get("line")
    return Rejection(message, line if isinstance(line, int) else None)


@dataclass(slots=True)
class WriteOutcome:
    """What became of a batch: positions not written, with cause and reason; flushes made."""

    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)  # failed alone while QuestDB answered
    unattempted: list[int] = field(default_factory=list)  # left after a refusal, nothing written
    flushes: int = 0


class RowSink:
    """One ILP/HTTP sender; one write at a time. Its blocking calls run on `executor`."""

    def __init__(
        self,
        sender_conf: str,
        *,
        flush_timeout_s: float,
        flush_max_bytes: int,
        metrics: HotWriterMetrics,
        answers: Callable[[], bool],
        executor: Executor,
    ):
        self.metrics = metrics
        self._executor = executor
        self.answers = answers  # does QuestDB answer at all (SELECT 1)?
        self.flush_max_bytes = flush_max_bytes
        # Batches are flushed by hand and retried by the writer with its own backoff, so the
        # client neither flushes on its own nor retries internally (which would block a stop).
        self._sender = Sender.from_conf(
            sender_conf,
            auto_flush=False,
            retry_timeout=0,
            request_timeout=max(1, round(flush_timeout_s * 1000)),
            protocol_version=ILP_PROTOCOL_VERSION,
        )
        self._sender.establish()  # type: ignore[no-untyped-call]  # the stub lacks -> None
        self._row_bytes: dict[type, int] = {}  # ILP bytes of a row, per record type, last seen

    def close(self) -> None:
        self._sender.close()

    async def write(self, records: Sequence[EntryRecord]) -> WriteOutcome:
        """Write every record QuestDB accepts; report the others. Raises QuestDBUnavailableError.

        Parts are kept on a stack in batch order. A part goes out in flushes of at most about
        flush_max_bytes, since a flush takes time in proportion to its bytes (a 25-level book
        row is ~1 KB); a rejected flush is replaced by its pieces. Within a flush the rows
        are grouped per table (one frame each): QuestDB's line numbers count in that order.
        """
        outcome = WriteOutcome()
        parts: list[list[int]] = [list(range(len(records)))]
        while parts:
            present, written, rest = self._fill(records, parts.pop(), outcome)
            if rest:
                parts.append(rest)  # after this flush, and after its pieces if it is rejected
            if not present:
                continue
            rejection = await self._flush(written, outcome)
            if rejection is None:
                continue
            if len(present) == 1 and rejection.refused:
                outcome.refused[present[0]] = f"QuestDB failed on the row: {rejection.message}"
                if outcome.flushes == 0:
                    outcome.unattempted = sorted(i for part in parts for i in part)
                    return outcome
                continue
            if len(present) == 1:
                reason = f"QuestDB rejected the row: {rejection.message}"
                outcome.rejected[present[0]] = ("rejected", reason)
                continue
            parts.extend(reversed(_split(present, rejection.line)))
        return outcome

    def _fill(
        self, records: Sequence[EntryRecord], part: list[int], outcome: WriteOutcome
    ) -> tuple[list[int], list[TableRows], list[int]]:
        """Buffer the part's rows, one frame per table and chunk, until about flush_max_bytes:
        the positions buffered (in buffer order, which QuestDB's line numbers follow), their
        frames, and the positions left for the next flush. Chunks are sized from the bytes a
        row of the table took before."""
        by_type: dict[type, list[int]] = {}
        for index in part:
            by_type.setdefault(type(records[index]), []).append(index)
        present: list[int] = []
        written: list[TableRows] = []
        rest: list[int] = []
        for row_type, positions in by_type.items():
            at = 0
            while at < len(positions):
                room = self.flush_max_bytes - len(self._sender)
                if present and room <= 0:
                    break
                size = self._row_bytes.get(row_type, DEFAULT_ROW_BYTES)
                chunk = positions[at : at + max(1, room // size)]
                at += len(chunk)
                before = len(self._sender)
                self._encode(records, chunk, present, written, outcome)
                grew = len(self._sender) - before
                if grew > 0:
                    self._row_bytes[row_type] = max(1, grew // len(chunk))
            rest.extend(positions[at:])
        return present, written, rest

    def _encode(
        self,
        records: Sequence[EntryRecord],
        chunk: list[int],
        present: list[int],
        written: list[TableRows],
        outcome: WriteOutcome,
    ) -> None:
        """Buffer the chunk as one frame; a chunk the client cannot encode (it adds nothing
        then) is encoded in halves, so that the row at fault is set aside alone."""
        try:
            rows = table_rows([records[i] for i in chunk])
            write_table(self._sender, rows)
        except (ValueError, TypeError, OverflowError) as exc:
            reason = f"not writable as an ILP row: {exc}"
        except QuestDBError as exc:
            if exc.code not in _ROW_ERROR_CODES:
                raise QuestDBUnavailableError(f"the ILP sender failed: {exc}") from None
            reason = f"not writable as an ILP row: {exc}"
        else:
            present.extend(chunk)
            written.append(rows)
            return
        if len(chunk) == 1:
            outcome.rejected[chunk[0]] = ("unencodable", reason)
            return
        middle = len(chunk) // 2
        self._encode(records, chunk[:middle], present, written, outcome)
        self._encode(records, chunk[middle:], present, written, outcome)

    async def _flush(self, written: list[TableRows], outcome: WriteOutcome) -> Rejection | None:
        """Send the buffer; None when QuestDB confirmed it (a failed flush empties it too)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            await loop.run_in_executor(self._executor, self._sender.flush)
        except QuestDBError as exc:
            rejection = rejection_of(exc)
            if rejection is not None:
                return rejection
            if not await loop.run_in_executor(self._executor, self.answers):
                raise QuestDBUnavailableError(str(exc)) from None
            return Rejection(" ".join(str(exc).split()), None, refused=True)
        elapsed = time.perf_counter() - started
        outcome.flushes += 1
        self._observe(written, elapsed)
        return None

    def _observe(self, written: list[TableRows], elapsed_s: float) -> None:
        """Per-flush latency; per-record freshness: the flush's end minus the exchange time,
        observed a table's column at a time.

        The rows are queryable once QuestDB's WAL apply has run, a few milliseconds later,
        so this slightly flatters "exchange time to queryable".
        """
        metrics = self.metrics
        metrics.write_latency.observe(elapsed_s)
        now_ns = time.time_ns()
        metrics.last_write.set(now_ns / 1e9)
        for rows in written:
            ages = (now_ns - _nanos(rows.ts)) / 1e9
            observe_many(metrics.freshness.labels(table=rows.table), ages)
            if rows.recv_ts is not None:
                ages = (now_ns - _nanos(rows.recv_ts)) / 1e9
                observe_many(metrics.receive_freshness.labels(table=rows.table), ages)
            metrics.records.labels(table=rows.table).inc(len(rows.ts))


def _nanos(column: pa.Array[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """A timestamp column as int64 nanoseconds (no copy: the designated timestamp and
    recv_ts have no nulls)."""
    return column.cast(pa.int64()).to_numpy(zero_copy_only=False)


def _split(present: list[int], line: int | None) -> list[list[int]]:
    """The rejected part in pieces: before the named line, the line alone, after it; else
    two halves. Rows before the first bad line parsed, so that piece usually goes through."""
    if line is not None and 1 <= line <= len(present):
        at = line - 1
        pieces = [present[:at], present[at : at + 1], present[at + 1 :]]
    else:
        middle = len(present) // 2
        pieces = [present[:middle], present[middle:]]
    return [piece for piece in pieces if piece]


@dataclass(frozen=True, slots=True)
class WalState:
    """A table's WAL: transactions committed but not yet applied (not yet queryable), and
    whether applying is suspended (then nothing new becomes queryable until it is resumed)."""

    unapplied: int
    suspended: bool


def wal_states(http: QuestDBHttp) -> dict[str, WalState]:
    """The WAL state of every record table that exists (QuestDB's `wal_tables()`)."""
    answer = http.exec("SELECT name, suspended, writerTxn, sequencerTxn FROM wal_tables()")
    tables = {spec.table for spec in SPECS}
    return {
        str(name): WalState(unapplied=int(sequencer) - int(writer), suspended=bool(suspended))
        for name, suspended, writer, sequencer in answer["dataset"]
        if name in tables
    }


def wal_applied(http: QuestDBHttp) -> bool:
    """True when every committed write to the record tables is queryable."""
    return all(state.unapplied == 0 for state in wal_states(http).values())
