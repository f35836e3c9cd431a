"""Order-independent checksums of a table: "the same rows" across tiers.

`row_checksum(spec, table)` covers every column of every row (values, nulls, book levels): it
is what the archiver compares in each tier before it drops a source. `key_checksum` covers the
dedup keys only (the generator's truth, and tests that count rows whatever their values).

Both are `(rows, checksum)`, where checksum is the sum, modulo 2**64, of one 64-bit hash per
row of the row's values: every column in the spec's order (`row_checksum`), or the key columns
(`spec.dedup_keys`, with `spec.timestamp`, for `key_checksum`).
A sum does not depend on row order, chunking or dictionary encoding, and counts duplicates;
any change of one key value changes it (barring a 2**-64 accident). QuestDB, ClickHouse and
Parquet hand back the same rows in different Arrow types, so each value is normalized first:

| kind | normalized value v (uint64) |
|---|---|
| timestamp | int64 nanoseconds since the epoch (any unit, any time zone; or int64 ns) |
| int | int64, two's complement |
| float | IEEE-754 bits of the float64; -0.0 as 0.0; NaN is null (stores keep NaN as NULL) |
| bool | 0 or 1 |
| symbol, text | the first 8 bytes of blake2b(utf-8 bytes, digest_size=8), little-endian |

A value hashes to `mix(v)`, a null to `NULL_HASH`; the row's hash folds its columns in order:
`h = 0; for each column: h = mix(h * FOLD + value_hash)`. `mix` is splitmix64's finalizer, all
arithmetic modulo 2**64. Everything is vectorized with numpy except blake2b, which runs once
per distinct string of an Arrow chunk.

Book levels (`[prices, sizes]`, a list of float lists) hash to `mix(sum of their parts)`: each
float `x` at (list i, position j) is `mix(float_hash(x) * FOLD + mix(i << 32 | j))`, each
non-empty list i of length n adds `mix(LEVELS_LENGTH + (i << 32 | n))`. A ladder without a
float hashes alike however it is spelled: QuestDB returns `[]` for the `[[], []]` it was given,
and a null ladder reads back as no levels too (`rows_to_levels`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from marketstream.schemas.columns import TableSpec
from marketstream.schemas.records import Kind

U64 = npt.NDArray[np.uint64]
Column: TypeAlias = "pa.ChunkedArray[Any] | pa.Array[Any]"

NULL_HASH: Final = np.uint64(0x6E756C6C_6E756C6C)  # b"nullnull"
FOLD: Final = np.uint64(0x9E3779B9_7F4A7C15)
_MIX_ADD: Final = np.uint64(0x9E3779B9_7F4A7C15)
_MIX_1: Final = np.uint64(0xBF58476D_1CE4E5B9)
_MIX_2: Final = np.uint64(0x94D049BB_133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S32: Final = np.uint64(32)
LEVELS_LENGTH: Final = np.uint64(0x6C656E67_74680000)  # b"length\0\0"


def key_columns(spec: TableSpec) -> tuple[str, ...]:
    """The columns the checksum covers, in the order they are folded."""
    keys = spec.dedup_keys
    return keys if spec.timestamp in keys else (spec.timestamp, *keys)


def row_checksum(spec: TableSpec, table: pa.Table) -> tuple[int, int]:
    """(rows, checksum) over every column of the spec: any changed value or null shows."""
    hashes = row_hashes(spec, table)
    return len(hashes), int(hashes.sum(dtype=np.uint64))


def row_hashes(spec: TableSpec, table: pa.Table) -> U64:
    """One uint64 hash per row of all its values, in the table's row order."""
    return _fold(spec, table, spec.names)


def key_checksum(spec: TableSpec, table: pa.Table) -> tuple[int, int]:
    """(rows, checksum) of a table holding at least the spec's key columns."""
    hashes = key_hashes(spec, table)
    return len(hashes), int(hashes.sum(dtype=np.uint64))


def key_hashes(spec: TableSpec, table: pa.Table) -> U64:
    """One uint64 hash per row of its key values, in the table's row order."""
    return _fold(spec, table, key_columns(spec), what="key ")


def _fold(spec: TableSpec, table: pa.Table, names: tuple[str, ...], what: str = "") -> U64:
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise ValueError(
            f"the table lacks {what}column(s) {', '.join(missing)} of {spec.table}: "
            f"expected {', '.join(names)}"
        )
    rows = np.zeros(table.num_rows, dtype=np.uint64)
    for name in names:
        column = table.column(name)
        rows = mix(rows * FOLD + column_hashes(spec.column(name).kind, column, name))
    return rows


def mix(x: U64) -> U64:
    """splitmix64's finalizer over an array: a bijection of uint64 that spreads every bit."""
    z = x + _MIX_ADD
    z = (z ^ (z >> _S30)) * _MIX_1
    z = (z ^ (z >> _S27)) * _MIX_2
    return z ^ (z >> _S31)


def column_hashes(kind: Kind, column: Column, name: str = "") -> U64:
    """Each value's hash (nulls to NULL_HASH), normalized by the column's kind."""
    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    if kind in (Kind.SYMBOL, Kind.TEXT):
        distinct_first = kind is Kind.SYMBOL
        parts = [_string_hashes(c, name, distinct_first=distinct_first) for c in chunked.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    if kind is Kind.LEVELS:
        parts = [_levels_hashes(c, name) for c in chunked.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    values, valid = _numbers(kind, chunked, name)
    return np.where(valid, mix(values), NULL_HASH)


def _numbers(
    kind: Kind, column: pa.ChunkedArray[Any], name: str
) -> tuple[U64, npt.NDArray[np.bool_]]:
    """The values as uint64 (see the table in the module's docstring), and which are valid."""
    data_type = column.type
    if kind is Kind.TIMESTAMP and isinstance(data_type, pa.TimestampType):
        column = column.cast(pa.timestamp("ns", tz=data_type.tz)).cast(pa.int64())
    elif kind in (Kind.TIMESTAMP, Kind.INT) and pa.types.is_integer(data_type):
        column = column.cast(pa.int64())
    elif kind is Kind.FLOAT and (pa.types.is_floating(data_type) or pa.types.is_integer(data_type)):
        column = column.cast(pa.float64())
    elif kind is Kind.BOOL and pa.types.is_boolean(data_type):
        column = column.cast(pa.uint8())
    else:
        raise TypeError(f"column {name!r} of type {data_type} cannot hold {kind.value} values")
    valid = _valid(column)
    filled = column.fill_null(cast(Any, 0)).to_numpy()  # the stub wants a typed scalar
    if kind is Kind.FLOAT:
        floats = np.asarray(filled, dtype=np.float64)
        valid &= ~np.isnan(floats)
        floats = np.where(floats == 0.0, 0.0, floats)  # -0.0 and 0.0 are one value
        return floats.view(np.uint64), valid
    return np.asarray(filled).astype(np.int64, copy=False).view(np.uint64), valid


def _levels_hashes(chunk: pa.Array[Any], name: str) -> U64:
    """Each row's ladder (a list of float lists) as one hash; see the module's docstring."""
    if not (_is_list(chunk.type) and _is_list(chunk.type.value_type)):
        raise TypeError(f"column {name!r} of type {chunk.type} cannot hold book levels")
    lists = pc.list_flatten(chunk)  # the rows' inner lists, nulls skipped
    list_row = _indices(pc.list_parent_indices(chunk))
    row_starts, row_lengths = _starts(chunk)
    list_index = np.arange(len(lists), dtype=np.uint64) - row_starts[list_row]
    floats = pc.list_flatten(lists)
    float_list = _indices(pc.list_parent_indices(lists))
    list_starts, list_lengths = _starts(lists)
    position = np.arange(len(floats), dtype=np.uint64) - list_starts[float_list]
    values, valid = _numbers(Kind.FLOAT, pa.chunked_array([floats], pa.float64()), name)
    float_hashes = np.where(valid, mix(values), NULL_HASH)
    parts = mix(float_hashes * FOLD + mix((list_index[float_list] << _S32) | position))
    per_list = _segment_sums(parts, list_starts, list_lengths)
    per_list += np.where(
        list_lengths > 0, mix(LEVELS_LENGTH + ((list_index << _S32) | list_lengths)), 0
    ).astype(np.uint64)
    return mix(_segment_sums(per_list, row_starts, row_lengths))


def _is_list(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(data_type)
        or pa.types.is_large_list(data_type)
        or pa.types.is_fixed_size_list(data_type)
    )


def _indices(array: Column) -> npt.NDArray[np.intp]:
    return np.asarray(array.to_numpy(), dtype=np.intp)


def _starts(lists: pa.Array[Any]) -> tuple[U64, U64]:
    """Where each list's values begin among the flattened values, and how many it has (0 for
    a null list, whose values list_flatten skips)."""
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    counts = np.asarray(lengths, dtype=np.uint64)
    return np.cumsum(counts, dtype=np.uint64) - counts, counts


def _segment_sums(values: U64, starts: U64, lengths: U64) -> U64:
    """The sum (mod 2**64) of each run values[start:start + length]."""
    running = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(values, dtype=np.uint64)])
    begin = starts.astype(np.intp)
    sums: U64 = running[begin + lengths.astype(np.intp)] - running[begin]
    return sums


def _valid(column: Column) -> npt.NDArray[np.bool_]:
    if column.null_count == 0:
        return np.ones(len(column), dtype=np.bool_)
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)


def _string_hashes(chunk: pa.Array[Any], name: str, *, distinct_first: bool) -> U64:
    """blake2b of each string of the chunk. Repeated names (symbols) are hashed once per
    distinct value and taken by index; free text (trade ids, mostly unique) row by row."""
    if isinstance(chunk, pa.DictionaryArray):
        dictionary, indices = chunk.dictionary, chunk.indices
    elif distinct_first:
        encoded = _strings(chunk, name).dictionary_encode()
        dictionary, indices = encoded.dictionary, encoded.indices
    else:
        return _blake_hashes(_strings(chunk, name))
    hashes = _blake_hashes(_strings(dictionary, name))
    taken = np.asarray(indices.fill_null(0).to_numpy(), dtype=np.intp)
    out = hashes[taken] if len(hashes) else np.zeros(len(taken), dtype=np.uint64)
    if indices.null_count:
        out[~_valid(indices)] = NULL_HASH
    return out


def _strings(array: pa.Array[Any], name: str) -> pa.Array[Any]:
    data_type = array.type
    if not (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    ):
        raise TypeError(f"column {name!r} of type {data_type} cannot hold string values")
    return array.cast(pa.large_string())


def _blake_hashes(strings: pa.Array[Any]) -> U64:
    """mix(blake2b-64 of the utf-8 bytes) per value; NULL_HASH for a null."""
    values = cast("list[bytes]", strings.fill_null("").cast(pa.large_binary()).to_pylist())
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(value, digest_size=8).digest() for value in values])
    hashes = mix(np.frombuffer(digests, dtype="<u8").astype(np.uint64))
    if strings.null_count:
        hashes[~_valid(strings)] = NULL_HASH
    return hashes
