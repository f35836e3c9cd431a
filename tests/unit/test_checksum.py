"""The key checksum: the same rows give the same sum in any order, chunking, encoding or
timestamp unit; any change of a key value, a dropped row or a duplicate changes it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketstream.schemas.arrow import to_arrow
from marketstream.schemas.checksum import (
    NULL_HASH,
    column_hashes,
    key_checksum,
    key_columns,
    key_hashes,
)
from marketstream.schemas.columns import QUOTES, SPECS, TRADES, TableSpec
from marketstream.schemas.records import Kind, Record, Trade
from tests.unit.strategies import BY_SPEC

MOD = 2**64
T0 = 1_700_000_000_000_000_000


def trade_table(n: int = 50) -> pa.Table:
    records: list[Record] = [
        Trade("binance" if i % 3 else "okx", "BTC-USDT" if i % 2 else "ETH-USDT",
              T0 + i * 1_000_000, T0 + i * 1_000_000 + 7, str(1000 + i), 100.0 + i, 0.5, "buy")
        for i in range(n)
    ]  # fmt: skip
    return to_arrow(TRADES, records)


def replace(table: pa.Table, name: str, column: Any) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)


@st.composite
def spec_and_records(draw: st.DrawFn) -> tuple[TableSpec, list[Record]]:
    spec = draw(st.sampled_from(SPECS))
    return spec, draw(st.lists(BY_SPEC[spec], min_size=1, max_size=20))


# --- what stays the same ---------------------------------------------------------------------


@settings(deadline=None)
@given(spec_and_records(), st.randoms())
def test_every_spec_sums_the_same_in_any_order(
    case: tuple[TableSpec, list[Record]], rnd: Any
) -> None:
    spec, records = case
    shuffled = list(records)
    rnd.shuffle(shuffled)
    rows, checksum = key_checksum(spec, to_arrow(spec, records))
    assert rows == len(records)
    assert key_checksum(spec, to_arrow(spec, shuffled)) == (rows, checksum)


@settings(deadline=None)
@given(spec_and_records())
def test_the_checksum_is_the_sum_of_the_row_hashes(case: tuple[TableSpec, list[Record]]) -> None:
    spec, records = case
    table = to_arrow(spec, records)
    expected = sum(int(h) for h in key_hashes(spec, table)) % MOD
    assert key_checksum(spec, table) == (len(records), expected)
    halves = [
        to_arrow(spec, records[: len(records) // 2]),
        to_arrow(spec, records[len(records) // 2 :]),
    ]
    assert sum(key_checksum(spec, half)[1] for half in halves) % MOD == expected


def test_chunking_does_not_matter() -> None:
    table = trade_table()
    chunked = pa.concat_tables([table.slice(0, 7), table.slice(7, 30), table.slice(37)])
    assert chunked.column("trade_id").num_chunks == 3
    assert key_checksum(TRADES, chunked) == key_checksum(TRADES, table)
    assert key_checksum(TRADES, chunked.combine_chunks()) == key_checksum(TRADES, table)


def test_string_encodings_do_not_matter() -> None:
    table = trade_table()
    expected = key_checksum(TRADES, table)
    for name in ("exchange", "symbol", "trade_id"):
        column = table.column(name)
        for variant in (
            column.dictionary_encode(),
            column.cast(pa.large_string()),
            column.cast(pa.string_view()),
            column.cast(pa.dictionary(pa.int8(), pa.large_string())),
        ):
            assert key_checksum(TRADES, replace(table, name, variant)) == expected, variant.type


def test_dictionaries_with_unused_or_repeated_values_hash_by_value() -> None:
    table = trade_table(4)
    symbols = table.column("symbol").to_pylist()
    dictionary = pa.array(["SOL-USDT", "BTC-USDT", "ETH-USDT", "BTC-USDT", "ETH-USDT"])
    indices = [3 if s == "BTC-USDT" else 2 for s in symbols]
    odd = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), dictionary)
    assert key_checksum(TRADES, replace(table, "symbol", odd)) == key_checksum(TRADES, table)


def test_timestamp_units_zones_and_plain_integers_are_one_time() -> None:
    table = trade_table()
    expected = key_checksum(TRADES, table)
    ts = table.column("ts")
    for variant in (
        ts.cast(pa.timestamp("us", tz="UTC")),  # the values are whole milliseconds
        ts.cast(pa.timestamp("ms")),
        ts.cast(pa.timestamp("ns", tz="Asia/Tokyo")),  # the same instants
        ts.cast(pa.timestamp("ns")),
        ts.cast(pa.int64()),
    ):
        assert key_checksum(TRADES, replace(table, "ts", variant)) == expected, variant.type


def test_other_columns_and_their_values_do_not_matter() -> None:
    table = trade_table()
    expected = key_checksum(TRADES, table)
    changed = replace(table, "price", pa.array(np.arange(50, dtype=np.float64)))
    assert key_checksum(TRADES, changed) == expected
    keys_only = table.select(list(key_columns(TRADES)))
    assert key_checksum(TRADES, keys_only) == expected
    reordered = table.select(list(reversed(table.column_names)))
    assert key_checksum(TRADES, reordered) == expected


def test_an_empty_table_is_zero_rows_and_zero() -> None:
    assert key_checksum(TRADES, trade_table(0)) == (0, 0)


def test_a_pinned_value_guards_against_a_changed_algorithm() -> None:
    """Tiers are checked against checksums computed earlier (a manifest, a truth file): the
    algorithm must not move. Change this value only with a migration of what was stored."""
    assert key_checksum(TRADES, trade_table(3)) == (3, 0x8A08_657C_E7B1_01F8)


# --- what changes it -------------------------------------------------------------------------


@pytest.mark.parametrize("name", key_columns(TRADES))
def test_any_change_of_one_key_value_changes_it(name: str) -> None:
    table = trade_table()
    _, expected = key_checksum(TRADES, table)
    column = table.column(name)
    data_type = column.type
    plain = column.cast(pa.int64()) if pa.types.is_timestamp(data_type) else column
    values: list[Any] = plain.to_pylist()
    for row in (0, 17, 49):
        changed = list(values)
        value = changed[row]
        changed[row] = value + "x" if isinstance(value, str) else value + 1
        array = pa.array(changed, pa.int64() if pa.types.is_timestamp(data_type) else data_type)
        assert key_checksum(TRADES, replace(table, name, array))[1] != expected, (name, row)


def test_moving_a_value_to_another_row_changes_it() -> None:
    table = trade_table(2)
    ids = table.column("trade_id").to_pylist()
    swapped = replace(table, "trade_id", pa.array(list(reversed(ids))))
    assert key_checksum(TRADES, swapped)[1] != key_checksum(TRADES, table)[1]


def test_moving_a_value_to_another_column_changes_it() -> None:
    a = pa.table({"ts": pa.array([1], pa.int64()), "exchange": ["x"], "symbol": ["y"],
                  "recv_ts": pa.array([2], pa.int64())})  # fmt: skip
    b = pa.table({"ts": pa.array([2], pa.int64()), "exchange": ["x"], "symbol": ["y"],
                  "recv_ts": pa.array([1], pa.int64())})  # fmt: skip
    c = pa.table({"ts": pa.array([1], pa.int64()), "exchange": ["y"], "symbol": ["x"],
                  "recv_ts": pa.array([2], pa.int64())})  # fmt: skip
    sums = {key_checksum(QUOTES, t)[1] for t in (a, b, c)}
    assert len(sums) == 3


def test_duplicates_are_counted_and_a_lost_row_shows() -> None:
    table = trade_table()
    rows, checksum = key_checksum(TRADES, table)
    doubled = pa.concat_tables([table, table])
    assert key_checksum(TRADES, doubled) == (2 * rows, 2 * checksum % MOD)
    with_one_twice = pa.concat_tables([table, table.slice(5, 1)])
    assert key_checksum(TRADES, with_one_twice)[1] != checksum
    one_lost = pa.concat_tables([table.slice(0, 5), table.slice(6)])
    assert key_checksum(TRADES, one_lost)[0] == rows - 1
    assert key_checksum(TRADES, one_lost)[1] != checksum
    # a lost row and a duplicated one: the count agrees, the checksum does not
    swap = pa.concat_tables([table.slice(0, 5), table.slice(6), table.slice(7, 1)])
    assert key_checksum(TRADES, swap)[0] == rows
    assert key_checksum(TRADES, swap)[1] != checksum


# --- nulls and normalization -----------------------------------------------------------------


def test_nulls_hash_to_their_own_value_in_every_kind() -> None:
    cases: list[tuple[Kind, pa.Array[Any], Any]] = [
        (Kind.TEXT, pa.array(["", None, "a"]), ""),
        (Kind.SYMBOL, pa.array(["", None, "a"]), ""),
        (Kind.INT, pa.array([0, None, 1], pa.int64()), 0),
        (Kind.TIMESTAMP, pa.array([0, None, 1], pa.timestamp("ns", tz="UTC")), 0),
        (Kind.FLOAT, pa.array([0.0, None, 1.0]), 0.0),
        (Kind.BOOL, pa.array([False, None, True]), False),
    ]
    for kind, array, _zero in cases:
        hashes = column_hashes(kind, array)
        assert hashes[1] == NULL_HASH, kind
        assert len(set(hashes.tolist())) == 3, kind  # null differs from zero and empty


def test_nulls_in_dictionary_indices_and_values() -> None:
    values = pa.array(["a", None, "b"])
    by_index = pa.DictionaryArray.from_arrays(pa.array([0, None, 2], pa.int32()), values)
    by_value = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2], pa.int32()), values)
    plain = column_hashes(Kind.SYMBOL, pa.array(["a", None, "b"]))
    assert column_hashes(Kind.SYMBOL, by_index).tolist() == plain.tolist()
    assert column_hashes(Kind.SYMBOL, by_value).tolist() == plain.tolist()


def test_floats_negative_zero_is_zero_and_nan_is_null() -> None:
    hashes = column_hashes(Kind.FLOAT, pa.array([0.0, -0.0, float("nan"), None, 1.5]))
    assert hashes[0] == hashes[1]
    assert hashes[2] == hashes[3] == NULL_HASH
    ints = column_hashes(Kind.FLOAT, pa.array([1, 2], pa.int32()))
    assert ints.tolist() == column_hashes(Kind.FLOAT, pa.array([1.0, 2.0])).tolist()


def test_integer_widths_are_one_value() -> None:
    expected = column_hashes(Kind.INT, pa.array([1, 2, -3], pa.int64())).tolist()
    for data_type in (pa.int8(), pa.int32(), pa.int16()):
        assert column_hashes(Kind.INT, pa.array([1, 2, -3], data_type)).tolist() == expected
    assert column_hashes(Kind.INT, pa.array([1, 2], pa.uint64())).tolist() == expected[:2]


def test_a_missing_key_column_or_a_wrong_type_is_an_error() -> None:
    table = trade_table(3)
    with pytest.raises(ValueError, match="trade_id"):
        key_checksum(TRADES, table.drop_columns(["trade_id"]))
    with pytest.raises(TypeError, match="'trade_id'"):
        key_checksum(TRADES, replace(table, "trade_id", pa.array([1, 2, 3])))
    with pytest.raises(TypeError, match="'ts'"):
        key_checksum(TRADES, replace(table, "ts", pa.array(["a", "b", "c"])))


def test_large_tables_are_vectorized() -> None:
    """Not a timing assertion: one million rows go through without a per-row Python object
    other than the unique trade ids' digests, and the result is exact."""
    n = 1_000_000
    ts = pa.array(np.arange(n, dtype=np.int64) * 1_000_000 + T0).cast(pa.timestamp("ns"))
    table = pa.table(
        {
            "ts": ts,
            "exchange": pa.array(np.where(np.arange(n) % 2 == 0, "binance", "okx")),
            "symbol": pa.array(["BTC-USDT"] * n).dictionary_encode(),
            "trade_id": pa.array(np.arange(n)).cast(pa.string()),
        }
    )
    rows, checksum = key_checksum(TRADES, table)
    assert rows == n
    head, tail = table.slice(0, 400_000), table.slice(400_000)
    assert (key_checksum(TRADES, head)[1] + key_checksum(TRADES, tail)[1]) % MOD == checksum
