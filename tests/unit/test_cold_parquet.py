"""Cold Parquet files: exact round trips, (symbol, ts) order, metadata, encodings, readers.

ClickHouse's reading of these files is checked in tests/integration/test_cold_store.py, on
the session's one in-process engine.
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]  # installed with chdb; no stubs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketstream.schemas.arrow import SCHEMA_VERSION, arrow_schema, from_arrow, to_arrow
from marketstream.schemas.columns import BOOKS, QUOTES, SPECS, TRADES, TableSpec
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Quote,
    Record,
    Trade,
)
from marketstream.tiers.cold_parquet import (
    META_CHECKSUM,
    META_ROWS,
    META_SCHEMA,
    META_TYPE,
    ColdFileError,
    decode,
    encode_partition,
    file_checksum,
    file_rows,
    file_spec,
    read_metadata,
    sort_keys,
)
from tests.record_samples import derivative_samples
from tests.unit.strategies import BY_SPEC

T0 = 1_732_180_000_123_456_789  # nanoseconds that a microsecond reader would lose

SAMPLES: dict[str, list[Record]] = {
    "trades": [
        Trade("binance", "ETH-USDT", T0 + 5, T0 + 9, "2001", 3100.5, 2.5, "sell"),
        Trade("binance", "BTC-USDT", T0 + 1, T0 + 8, "1002", 97250.2, 1e-8, "sell"),
        Trade("binance", "BTC-USDT", T0, T0 + 7, "1001", 97250.1, 0.015, "buy"),
    ],
    "quotes": [
        Quote("binance", "BTC-USDT", T0, T0 + 2, 97250.0, 1.4, 97250.1, 0.2, 97250.1),
        Quote("binance", "BTC-USDT", T0, T0 + 1, 97250.0, 1.5, 97250.1, 0.2),
        Quote("coinbase", "BTC-USD", T0 + 5, T0 + 9, 97000.0, None, 97001.0, None, 97000.5),
    ],
    "candles": [
        Candle("binance", "BTC-USDT", "5m", T0, 1.0, 2.0, 0.5, 1.5, 0.0, None, False),
        Candle("binance", "BTC-USDT", "1m", T0, 1.0, 2.0, 0.5, 1.5, 10.0, 3, True),
    ],
    "books": [
        Book("binance", "BTC-USDT", T0, T0 + 3, 42, [(100.0, 1.0), (99.5, 2.0)], [(100.5, 3.0)]),
        Book("binance", "BTC-USDT", T0 + 1, T0 + 4, 43, [(99.0, 0.5)], [], is_snapshot=False),
        Book("binance", "ADA-USDT", T0 + 2, T0 + 4, 7, [], [], is_snapshot=False),
    ],
    "funding": [
        Funding("binance-usdm", "BTC-USDT-PERP", T0, 0.0001, 97260.0, 97255.5, T0 + 10**9),
        Funding("binance-usdm", "BTC-USDT-PERP", T0 + 3, -0.00025),
    ],
    **derivative_samples(T0, later=T0 + 2),
}


def _key(spec: TableSpec, record: Record) -> tuple[object, ...]:
    return tuple(getattr(record, name) for name, _ in sort_keys(spec))


def _round_trip(spec: TableSpec, records: list[Record]) -> list[Record]:
    return from_arrow(spec, decode(encode_partition(spec, to_arrow(spec, records))))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_samples_round_trip_exactly_in_symbol_ts_order(spec: TableSpec) -> None:
    records = SAMPLES[spec.table]
    back = _round_trip(spec, records)
    assert back == sorted(records, key=lambda r: _key(spec, r))


@st.composite
def spec_and_records(draw: st.DrawFn) -> tuple[TableSpec, list[Record]]:
    spec = draw(st.sampled_from(SPECS))
    return spec, draw(st.lists(BY_SPEC[spec], max_size=30))


@given(spec_and_records())
def test_any_records_round_trip_sorted(case: tuple[TableSpec, list[Record]]) -> None:
    spec, records = case
    back = _round_trip(spec, records)
    assert sorted(back, key=repr) == sorted(records, key=repr)  # the same multiset of records
    keys = [_key(spec, r) for r in back]
    assert keys == sorted(keys)


def test_decoded_table_has_the_spec_schema() -> None:
    for spec in SPECS:
        table = decode(encode_partition(spec, to_arrow(spec, SAMPLES[spec.table])))
        assert table.schema == arrow_schema(spec)
        assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")


def test_equal_rows_in_any_order_give_equal_bytes() -> None:
    records = list(SAMPLES["quotes"])
    first = encode_partition(QUOTES, to_arrow(QUOTES, records))
    random.Random(1).shuffle(records)
    records.reverse()
    assert encode_partition(QUOTES, to_arrow(QUOTES, records)) == first


def test_extra_columns_are_dropped_and_missing_ones_rejected() -> None:
    table = to_arrow(TRADES, SAMPLES["trades"])
    with_extra = table.append_column("note", pa.array(["x"] * table.num_rows))
    assert decode(encode_partition(TRADES, with_extra)).column_names == list(TRADES.names)
    with pytest.raises(ColdFileError, match="trades: table has no column price"):
        encode_partition(TRADES, table.drop_columns(["price"]))
    wrong = table.set_column(5, "price", pa.array(["cheap"] * table.num_rows))
    with pytest.raises(ColdFileError, match="trades: columns do not fit"):
        encode_partition(TRADES, wrong)
    no_side = table.set_column(7, "side", pa.array([None] * table.num_rows, pa.string()))
    with pytest.raises(ColdFileError, match="null values"):
        encode_partition(TRADES, no_side)


def test_metadata_names_schema_type_rows_and_checksum() -> None:
    for spec in SPECS:
        records = SAMPLES[spec.table]
        data = encode_partition(spec, to_arrow(spec, records), checksum="00ff00ff00ff00ff")
        metadata = read_metadata(data)
        values = metadata.metadata
        assert values is not None
        assert values[META_SCHEMA.encode()] == SCHEMA_VERSION.encode()
        assert values[META_TYPE.encode()] == spec.record_type.encode()
        assert values[META_ROWS.encode()] == str(len(records)).encode()
        assert values[META_CHECKSUM.encode()] == b"00ff00ff00ff00ff"
        assert file_rows(metadata) == len(records)
        assert file_spec(metadata) is spec
        assert file_checksum(metadata) == "00ff00ff00ff00ff"
    no_checksum = encode_partition(TRADES, to_arrow(TRADES, SAMPLES["trades"]))
    assert file_checksum(read_metadata(no_checksum)) is None
    assert META_CHECKSUM.encode() not in (read_metadata(no_checksum).metadata or {})


def test_empty_partition_is_a_valid_file() -> None:
    data = encode_partition(BOOKS, arrow_schema(BOOKS).empty_table())
    assert file_rows(read_metadata(data)) == 0
    assert decode(data).num_rows == 0


def test_layout_zstd_statistics_encodings_and_sorting() -> None:
    records = [
        Trade("okx", symbol, T0 + i, T0 + i + 1, str(10_000 + i), 100.0 + i % 7, 0.5, "buy")
        for symbol in ("BTC-USDT", "ETH-USDT", "SOL-USDT")
        for i in range(10)
    ]
    data = encode_partition(TRADES, to_arrow(TRADES, records), row_group_rows=10)
    metadata = read_metadata(data)
    assert metadata.num_row_groups == 3
    for index, symbol in enumerate(("BTC-USDT", "ETH-USDT", "SOL-USDT")):
        group = metadata.row_group(index)
        assert [(s.column_index, s.descending) for s in group.sorting_columns] == [
            (1, False),
            (2, False),
        ]
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(8)}
        assert all(c.compression == "ZSTD" for c in columns.values())
        stats = columns["symbol"].statistics
        assert stats is not None
        assert (stats.min, stats.max) == (symbol, symbol)  # a symbol filter skips the others
        ts_stats = columns["ts"].statistics
        assert ts_stats is not None
        assert ts_stats.has_min_max
        assert "DELTA_BINARY_PACKED" in columns["ts"].encodings
        assert "DELTA_BINARY_PACKED" in columns["recv_ts"].encodings
        assert "DELTA_BYTE_ARRAY" in columns["trade_id"].encodings
        assert "RLE_DICTIONARY" in columns["symbol"].encodings
        assert columns["price"].has_dictionary_page
        assert group.column(0).has_offset_index  # page index written
    filtered = decode(data, filters=pc.field("symbol") == "ETH-USDT")
    assert set(filtered.column("symbol").to_pylist()) == {"ETH-USDT"}
    assert filtered.num_rows == 10


def test_book_levels_survive_with_prices_then_sizes() -> None:
    table = decode(encode_partition(BOOKS, to_arrow(BOOKS, SAMPLES["books"])))
    rows = table.filter(pc.field("seq") == 42).column("bids").to_pylist()
    assert rows == [[[100.0, 99.5], [1.0, 2.0]]]


def test_pyarrow_and_pandas_read_the_file_with_exact_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "part-0.parquet"
    path.write_bytes(encode_partition(TRADES, to_arrow(TRADES, SAMPLES["trades"])))
    plain = pq.read_table(path)  # a path, not a Python file object (apache/arrow#50482)
    assert plain.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert plain.column("ts").cast(pa.int64()).to_pylist() == [T0, T0 + 1, T0 + 5]

    frame = pd.read_parquet(path)
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert [int(v) for v in frame["ts"].astype("int64")] == [T0, T0 + 1, T0 + 5]
    assert list(frame["symbol"]) == ["BTC-USDT", "BTC-USDT", "ETH-USDT"]
    assert frame["price"].tolist() == [97250.1, 97250.2, 3100.5]


def test_pandas_reads_nulls_and_book_levels(tmp_path: Path) -> None:
    quotes_path, books_path = tmp_path / "quotes.parquet", tmp_path / "books.parquet"
    quotes_path.write_bytes(encode_partition(QUOTES, to_arrow(QUOTES, SAMPLES["quotes"])))
    books_path.write_bytes(encode_partition(BOOKS, to_arrow(BOOKS, SAMPLES["books"])))
    frame = pd.read_parquet(quotes_path)
    assert frame["bid_sz"].isna().tolist() == [True, False, False]  # BTC-USD sorts first
    levels = pd.read_parquet(books_path).set_index("seq")["bids"]
    assert [list(side) for side in levels[42]] == [[100.0, 99.5], [1.0, 2.0]]


def test_not_parquet_and_foreign_files_are_rejected() -> None:
    with pytest.raises(ColdFileError, match="not a Parquet file"):
        decode(b"not parquet at all")
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"a": [1]}), sink)
    with pytest.raises(ColdFileError, match="schema version None"):
        decode(bytes(sink.getvalue()))
    future = to_arrow(TRADES, SAMPLES["trades"]).replace_schema_metadata(
        {META_SCHEMA: "99", META_TYPE: "trade", META_ROWS: "3"}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(future, sink)
    with pytest.raises(ColdFileError, match="schema version '99': expected '1'"):
        decode(bytes(sink.getvalue()))


def test_file_rows_catches_a_count_that_disagrees() -> None:
    table = to_arrow(TRADES, SAMPLES["trades"]).replace_schema_metadata(
        {META_SCHEMA: SCHEMA_VERSION, META_TYPE: "trade", META_ROWS: "5"}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    with pytest.raises(ColdFileError, match=r"says 5 rows .* hold 3"):
        file_rows(read_metadata(bytes(sink.getvalue())))
