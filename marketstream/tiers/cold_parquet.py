"""The cold tier's file format: one zstd Parquet file per table, exchange and UTC day.

Pure bytes in, bytes out; where the bytes live is `cold_store`'s business.

Layout, each choice measured (pyarrow 26) on one synthetic exchange-day of 5 symbols: 1M
trades, 1M quotes, 100k 25-level books, 432k funding rows, 8.8k candles; prices a random walk
on each symbol's tick grid, lognormal sizes, exponential gaps between microsecond event
times, nanosecond receive times, increasing numeric trade ids, book snapshots that change
a fifth of their sizes each time:

- Rows sorted by (symbol, ts), ties broken by the other dedup keys, so equal input gives
  equal bytes, and each row group covers a narrow symbol/time range that its min/max
  statistics describe: readers skip row groups on `symbol = ...` and `ts` ranges.
- Row groups of 128Ki rows. Groups of 1Mi rows are 4% smaller but a symbol filter would then
  decode up to 8 times more; one group per symbol costs +16% over 300 Zipf-sized symbols
  (tiny groups restart every dictionary and compressor).
- Symbol-like columns (exchange, symbol, side, interval): dictionary, a few bits a row.
- Timestamps and int64: DELTA_BINARY_PACKED. trades.ts 3.8 B/row, against 4.4 plain and
  8.6 dictionary (zstd on all three); funding's regular ts shrinks from 3.4 to 0.01.
- Trade ids: DELTA_BYTE_ARRAY (prefix sharing), 0.07 B/row for numeric ids against 0.5
  plain and 1.6 dictionary; UUIDs 19.4 against 20.6 plain.
- float64 prices and sizes: dictionary, which falls back to plain by itself once a column
  chunk has too many distinct values. BYTE_STREAM_SPLIT is 2-3x larger here: prices sit on a
  tick grid, so zstd finds whole 8-byte repeats that splitting the bytes destroys (trades
  price 2.5 B/row split, 1.0 plain, 1.1 dictionary; size 7.1 / 4.1 / 3.6). Dictionary wins
  for trades, quotes and funding (-4%, -3%, -22% against plain) and loses for candles
  (+16%), whose few rows (9k a day) do not pay for a per-table rule.
- Book levels (list<list<float64>>): plain. Consecutive snapshots repeat most of their
  ladder, which zstd's window catches: 83 B/row plain, 103 dictionary, 234 byte-split.
- zstd level 6: against level 3, -4% for trades and quotes, -12% for books, at 1.1-2.2x the
  write time (reads are as fast). Level 9 gains under 3% more; 19 gains 1-12% (books) for
  up to 60x the time.
- Page index on: ClickHouse's reader prunes pages with it; it costs under 0.1%.

Result, bytes per row (JSON lines = the Redis entry JSON, one object a line; "Parquet plain" =
the same rows uncompressed, no dictionary; pyarrow defaults = zstd level 1, dictionary on all):

    table    JSON lines  JSON+zstd 6  Parquet plain  pyarrow defaults  this layout  vs JSON
    trades        184.9         23.7           76.7              19.3         12.2      15x
    quotes        201.5         27.6           77.0              24.1         17.4      12x
    candles       201.5         19.9           85.7              22.5         18.5      11x
    books         981.6        133.1          867.4             125.5         82.9      12x
    funding       174.6          9.1           68.2               7.2          4.3      41x

Encoding (sort included) costs 0.2-0.75 us a row, books 12 us (zstd 6 over ~800 bytes of
ladder a row); decoding 0.07-0.3 us, books 3 us; one core of a shared 2-core machine.

Timestamps are Parquet TIMESTAMP(NANOS, UTC): pyarrow and pandas read them as
`timestamp[ns, tz=UTC]`, ClickHouse as DateTime64(9, 'UTC'), exact to the nanosecond.
"""

from __future__ import annotations

from typing import Final, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marketstream.errors import MarketStreamError
from marketstream.schemas.arrow import SCHEMA_VERSION, arrow_schema
from marketstream.schemas.columns import SPEC_BY_TYPE, TableSpec
from marketstream.schemas.records import Kind

ZSTD_LEVEL: Final = 6
ROW_GROUP_ROWS: Final = 128 * 1024

META_SCHEMA: Final = "marketstream.schema"
META_TYPE: Final = "marketstream.type"
META_ROWS: Final = "marketstream.rows"
META_CHECKSUM: Final = "marketstream.checksum"

# Column encodings by kind; kinds in neither map are written PLAIN (see the module docstring).
_DICTIONARY_KINDS: Final = frozenset({Kind.SYMBOL, Kind.FLOAT})
_ENCODINGS: Final[dict[Kind, str]] = {
    Kind.TIMESTAMP: "DELTA_BINARY_PACKED",
    Kind.INT: "DELTA_BINARY_PACKED",
    Kind.TEXT: "DELTA_BYTE_ARRAY",
}


class ColdFileError(MarketStreamError, ValueError):
    """Bytes or a table that are not a cold file of ours; the message says what was expected."""


Order = list[tuple[str, Literal["ascending", "descending"]]]


def sort_keys(spec: TableSpec) -> Order:
    """(symbol, ts), then the remaining dedup keys: a total order for equal input, equal bytes."""
    names = ["symbol", spec.timestamp]
    names += [key for key in ("exchange", *spec.dedup_keys) if key not in names]
    return [(name, "ascending") for name in names]


def encode_partition(
    spec: TableSpec,
    table: pa.Table,
    *,
    checksum: str | None = None,
    zstd_level: int = ZSTD_LEVEL,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> bytes:
    """One cold Parquet file holding `table`'s rows (in any order) as spec's columns.

    Extra columns are dropped; a missing column, a value of the wrong type or a null in a
    required column raises ColdFileError. `checksum`, if given, is stored in the file's
    metadata for the archiver's verification.
    """
    schema = arrow_schema(spec)
    missing = [name for name in spec.names if name not in table.column_names]
    if missing:
        raise ColdFileError(f"{spec.table}: table has no column {', '.join(missing)}")
    try:
        rows = table.select(list(spec.names)).cast(schema)
    except (ValueError, TypeError, pa.ArrowNotImplementedError) as exc:  # nulls, wrong types
        raise ColdFileError(f"{spec.table}: columns do not fit its Arrow schema: {exc}") from None
    rows = rows.sort_by(sort_keys(spec))
    metadata = {
        META_SCHEMA: SCHEMA_VERSION,
        META_TYPE: spec.record_type,
        META_ROWS: str(rows.num_rows),
    }
    if checksum is not None:
        metadata[META_CHECKSUM] = checksum
    rows = rows.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(
        rows,
        sink,
        version="2.6",  # nanosecond timestamps
        compression="zstd",
        compression_level=zstd_level,
        row_group_size=row_group_rows,
        # pyarrow takes column names here; its stubs know only a bool.
        use_dictionary=[c.name for c in spec.columns if c.kind in _DICTIONARY_KINDS],  # type: ignore[arg-type]
        column_encoding={c.name: _ENCODINGS[c.kind] for c in spec.columns if c.kind in _ENCODINGS},
        write_statistics=True,
        write_page_index=True,
        sorting_columns=pq.SortingColumn.from_ordering(rows.schema, sort_keys(spec)[:2]),
    )
    return bytes(sink.getvalue())


def read_metadata(data: bytes) -> pq.FileMetaData:
    """The footer of a cold file; raises ColdFileError for bytes that are not Parquet."""
    try:
        # A pyarrow buffer, not io.BytesIO: reads through Python file objects can abort the
        # interpreter at exit (apache/arrow#50482).
        return pq.read_metadata(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ColdFileError(f"not a Parquet file ({len(data)} bytes): {exc}") from None


def _key_values(metadata: pq.FileMetaData) -> dict[str, str]:
    raw = metadata.metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"marketstream.")}


def file_spec(metadata: pq.FileMetaData) -> TableSpec:
    """The table spec a cold file was written for, checked against this schema version."""
    values = _key_values(metadata)
    version = values.get(META_SCHEMA)
    if version != SCHEMA_VERSION:
        raise ColdFileError(
            f"cold file schema version {version!r}: expected {SCHEMA_VERSION!r} "
            f"(the {META_SCHEMA} metadata key)"
        )
    record_type = values.get(META_TYPE)
    spec = SPEC_BY_TYPE.get(record_type or "")
    if spec is None:
        raise ColdFileError(
            f"cold file record type {record_type!r}: expected one of {', '.join(SPEC_BY_TYPE)}"
        )
    return spec


def file_rows(metadata: pq.FileMetaData) -> int:
    """The row count the writer recorded, checked against the row groups' own counts."""
    text = _key_values(metadata).get(META_ROWS)
    if text is None or not text.isdigit():
        raise ColdFileError(f"cold file has no valid {META_ROWS} metadata: {text!r}")
    rows = int(text)
    if rows != metadata.num_rows:
        raise ColdFileError(
            f"cold file says {rows} rows in {META_ROWS} but its row groups hold "
            f"{metadata.num_rows}: the file is damaged"
        )
    return rows


def file_checksum(metadata: pq.FileMetaData) -> str | None:
    return _key_values(metadata).get(META_CHECKSUM)


def decode(data: bytes, *, filters: pc.Expression | None = None) -> pa.Table:
    """The rows of a cold file in its (symbol, ts) order, typed by its spec's Arrow schema.

    `filters` (e.g. `pc.field("symbol") == "BTC-USDT"`) skips row groups by their statistics.
    """
    spec = file_spec(read_metadata(data))
    table = pq.read_table(pa.BufferReader(data), filters=filters, schema=arrow_schema(spec))
    return table.cast(arrow_schema(spec))
