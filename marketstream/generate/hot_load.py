"""Synthetic history into the hot tier: day tables to QuestDB over ILP/HTTP, and their truth.

Rows go out as pandas frames through `Sender.dataframe`, which serializes whole columns in
native code (about 4x faster than a `Sender.row` per record), in batches of several days per
table (one ILP/HTTP request each, about 10 MB); a thread flushes one batch while the next
days are made. QuestDB's dedup keys make a second run with the same seed a no-op. The truth
is the (rows, key checksum) of each table and day as generated, which QuestDB, and later
ClickHouse and Parquet, must reproduce from their own rows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
from questdb import QuestDBError, Sender

from marketstream.errors import ServiceError
from marketstream.generate.history import DayHistory
from marketstream.schemas.columns import SPEC_BY_TABLE, TableSpec
from marketstream.schemas.records import Kind
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_tables import create_all_sql

if TYPE_CHECKING:
    from questdb._client import Buffer  # deprecated as questdb.ingress.Buffer; not re-exported

ILP_PROTOCOL_VERSION: Final = 2  # binary doubles; nanosecond timestamps in every column
BATCH_ROWS: Final = 100_000  # rows of one table per ILP/HTTP request: about 10 MB of trades
IN_FLIGHT: Final = 2  # buffers: one being flushed while the next is filled


@dataclass(slots=True)
class TableLoad:
    """Rows written to one table and the seconds spent on them (serializing and sending)."""

    rows: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class LoadSummary:
    """What a load wrote, and the truth per table and day: (rows, key checksum)."""

    tables: dict[str, TableLoad] = field(default_factory=dict)
    truth: dict[str, dict[date, tuple[int, int]]] = field(default_factory=dict)
    generate_seconds: float = 0.0  # making the rows and their truth
    seconds: float = 0.0  # the whole load, from the first day made to the last flush
    days: int = 0

    def lines(self) -> list[str]:
        out = [
            f"{name}: {load.rows} rows written in {load.seconds:.2f} s ({load.rate:,.0f} rows/s)"
            for name, load in self.tables.items()
        ]
        generated = sum(load.rows for load in self.tables.values())
        rate = generated / self.generate_seconds if self.generate_seconds > 0 else 0.0
        out.append(
            f"generated {self.days} days, {generated} rows in {self.generate_seconds:.2f} s "
            f"({rate:,.0f} rows/s); all done in {self.seconds:.2f} s"
        )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "generate_seconds": round(self.generate_seconds, 3),
            "seconds": round(self.seconds, 3),
            "tables": {
                name: {"rows": load.rows, "seconds": round(load.seconds, 3)}
                for name, load in self.tables.items()
            },
            "truth": {
                name: {
                    day.isoformat(): {"rows": rows, "checksum": checksum}
                    for day, (rows, checksum) in days.items()
                }
                for name, days in self.truth.items()
            },
        }


def load_history(
    http: QuestDBHttp, days: Iterable[DayHistory], *, batch_rows: int = BATCH_ROWS
) -> LoadSummary:
    """Create the tables (if need be), write every day; the summary with the truth.

    A table's rows go out in batches of about batch_rows (several days of a small history,
    one ILP/HTTP request each); QuestDB takes a batch while the next days are made. Raises
    ServiceError when QuestDB is unreachable or refuses rows: what it took before stays (a
    re-run rewrites it as a no-op).
    """
    for sql in create_all_sql():
        http.exec(sql)
    summary = LoadSummary()
    started = time.perf_counter()
    try:
        with (
            Sender.from_conf(http.sender_conf(), protocol_version=ILP_PROTOCOL_VERSION) as sender,
            _Flusher(sender, summary) as flusher,
        ):
            pending: dict[str, list[pa.Table]] = {}
            for history, truth in _timed(days, summary):
                for name, table in history.tables.items():
                    summary.truth.setdefault(name, {})[history.day] = truth[name]
                    summary.tables.setdefault(name, TableLoad())
                    batch = pending.setdefault(name, [])
                    batch.append(table)
                    if sum(t.num_rows for t in batch) >= batch_rows:
                        _send_sliced(flusher, name, pending.pop(name), batch_rows)
            for name, batch in pending.items():
                _send_sliced(flusher, name, batch, batch_rows)
    except QuestDBError as exc:
        raise ServiceError(f"QuestDB at {http.base_url} did not take the rows: {exc}") from None
    summary.seconds = time.perf_counter() - started
    return summary


def _send_sliced(flusher: _Flusher, name: str, tables: list[pa.Table], batch_rows: int) -> None:
    """The tables as requests of at most batch_rows rows: a busy day (500k trades) is over
    100 MB of ILP, more than one request to QuestDB may carry."""
    whole = pa.concat_tables(tables)
    for offset in range(0, whole.num_rows, batch_rows):
        flusher.send(name, whole.slice(offset, batch_rows))


class _Flusher:
    """Serializes batches into ILP buffers here, and flushes them on a thread of its own, so
    that QuestDB takes one batch while the next is made; only that thread uses the sender.
    At most IN_FLIGHT buffers exist: a batch waits for the oldest flush to end."""

    def __init__(self, sender: Sender, summary: LoadSummary) -> None:
        self._sender = sender
        self._summary = summary
        self._free = [sender.new_buffer() for _ in range(IN_FLIGHT)]
        self._in_flight: deque[tuple[Future[float], Buffer, str]] = deque()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate-flush")

    def __enter__(self) -> _Flusher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            while self._in_flight and exc_info[0] is None:
                self._free.append(self._wait_oldest())
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def send(self, name: str, table: pa.Table) -> None:
        buffer = self._free.pop() if self._free else self._wait_oldest()
        load = self._summary.tables[name]
        started = time.perf_counter()
        add_table(buffer, SPEC_BY_TABLE[name], table)
        load.seconds += time.perf_counter() - started
        load.rows += table.num_rows
        self._in_flight.append((self._executor.submit(self._flush, buffer), buffer, name))

    def _flush(self, buffer: Buffer) -> float:
        started = time.perf_counter()
        self._sender.flush(buffer)
        return time.perf_counter() - started

    def _wait_oldest(self) -> Buffer:
        """The oldest flush's buffer, emptied, once it is done; its error if it failed."""
        future, buffer, name = self._in_flight.popleft()
        self._summary.tables[name].seconds += future.result()
        return buffer


def _timed(
    days: Iterable[DayHistory], summary: LoadSummary
) -> Iterator[tuple[DayHistory, dict[str, tuple[int, int]]]]:
    """Each day with its truth, the time spent making both added to the summary."""
    iterator = iter(days)
    while True:
        started = time.perf_counter()
        try:
            history = next(iterator)
            truth = history.truth()
        except StopIteration:
            return
        finally:
            summary.generate_seconds += time.perf_counter() - started
        summary.days += 1
        yield history, truth


def add_table(buffer: Buffer, spec: TableSpec, table: pa.Table) -> None:
    """Serialize an Arrow table in the spec's layout into an ILP buffer."""
    if table.num_rows == 0:
        return
    symbols = [c.name for c in spec.columns if c.kind is Kind.SYMBOL]
    buffer.dataframe(
        to_frame(spec, table), table_name=spec.table, symbols=symbols, at=spec.timestamp
    )


def to_frame(spec: TableSpec, table: pa.Table) -> Any:
    """A pandas frame the ILP client serializes natively: categorical symbols, datetime64[ns]
    timestamps (exact nanoseconds with ILP protocol 2), NaN for null doubles."""
    import pandas as pd  # type: ignore[import-untyped]  # noqa: PLC0415 - chdb's dependency

    columns: dict[str, Any] = {}
    for column in spec.columns:
        array = table.column(column.name)
        kind = column.kind
        if kind is Kind.SYMBOL:
            encoded = array.combine_chunks().dictionary_encode()
            columns[column.name] = pd.Categorical.from_codes(
                encoded.indices.to_numpy(zero_copy_only=False),
                categories=encoded.dictionary.to_pylist(),
            )
        elif kind is Kind.TIMESTAMP:
            ns = array.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            columns[column.name] = ns.to_numpy().view("datetime64[ns]")
        elif kind is Kind.FLOAT:
            columns[column.name] = array.to_numpy().astype(np.float64, copy=False)
        elif kind is Kind.TEXT:
            columns[column.name] = pd.array(
                array.combine_chunks(), dtype=pd.ArrowDtype(pa.string())
            )
        elif kind in (Kind.INT, Kind.BOOL) and array.null_count == 0:
            columns[column.name] = array.to_numpy()
        elif kind is Kind.INT:
            columns[column.name] = array.to_pandas().astype("Int64")  # NULL where None
        else:
            raise ValueError(f"{spec.table}.{column.name}: {kind.value} columns are not loaded")
    return pd.DataFrame(columns)
