"""The all-column row checksum, the archiver's drop gate: every value of every column counts
(prices, sizes, nulls, book sides and levels, candle OHLCV, the closed flag), while the ways
the stores spell the same values (dictionaries, units, list types, empty ladders) do not."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import fields, replace

from marketstream.schemas.arrow import arrow_schema, to_arrow
from marketstream.schemas.checksum import column_hashes, key_checksum, row_checksum
from marketstream.schemas.columns import (
    BOOKS,
    CANDLES,
    FUNDING,
    INSTRUMENTS,
    LIQUIDATIONS,
    OPEN_INTEREST,
    PRICES,
    QUOTES,
    SPECS,
    TRADES,
    TableSpec,
)
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Instrument,
    Kind,
    Liquidation,
    OpenInterest,
    Price,
    Quote,
    Record,
    Trade,
)
from tests.unit.strategies import BY_SPEC

T0 = 1_700_000_000_000_000_000
LEVELS = pa.list_(pa.list_(pa.float64()))

SAMPLES: dict[TableSpec, Record] = {
    TRADES: Trade("okx", "BTC-USDT", T0, T0 + 7, "1001", 100.5, 0.25, "buy"),
    QUOTES: Quote("okx", "BTC-USDT", T0, T0 + 3, 100.0, 1.0, 100.5, None, 100.25),
    CANDLES: Candle("okx", "BTC-USDT", "1m", T0, 100.0, 101.0, 99.0, 100.5, 12.5, 40, False),
    BOOKS: Book("okx", "BTC-USDT", T0, T0 + 1, 42, [(100.0, 1.0), (99.5, 2.0)], [(100.5, 3.0)]),
    FUNDING: Funding("okx", "BTC-USDT-PERP", T0, 0.0001, 100.1, None, T0 + 8 * 3600 * 10**9),
    LIQUIDATIONS: Liquidation("okx", "BTC-USD-PERP", T0, T0 + 5, "sell", 100.5, 0.0103),
    OPEN_INTEREST: OpenInterest("okx", "BTC-USDT-PERP", T0, T0 + 2, 52000.125, 5.06e9),
    INSTRUMENTS: Instrument("okx", "BTC-USDT-20250328", T0, "BTC-USDT-250328", "linear_future",
                            "BTC", "USDT", "USDT", 0.01, 1.0, 0.1, 0.1, T0 + 10**15, "trading"),
    PRICES: Price("jupiter", "SOL-USD", T0, T0 + 9, 147.48, T0 - 10**9, 348004023, 6.2e8, 1.29),
}  # fmt: skip


def _changed(value: Any) -> list[Any]:
    """Other values a field could hold, each a change the checksum must see."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1]
    if isinstance(value, float):
        return [value * (1 + 2**-52), None]  # the next float up; a null
    if isinstance(value, str):
        return [value + "x"]
    if isinstance(value, list):  # book levels: a price, a size, a level more, sides, none
        first = value[0]
        return [
            [(first[0] + 0.5, first[1]), *value[1:]],
            [(first[0], first[1] * 2), *value[1:]],
            [*value, (1.0, 1.0)],
            value[:1] + value[2:] if len(value) > 1 else [],
            [(size, price) for price, size in value],
        ]
    if value is None:
        return [1.5]
    raise AssertionError(f"no change for {value!r}")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_any_change_of_any_value_changes_it_where_the_key_checksum_may_not(
    spec: TableSpec,
) -> None:
    record = SAMPLES[spec]
    others: list[Record] = [replace(record, ts=record.ts + 10**9 * i) for i in range(1, 4)]
    base = to_arrow(spec, [record, *others])
    expected = row_checksum(spec, base)
    seen = 0
    for field in fields(record):
        value = getattr(record, field.name)
        if field.name == spec.timestamp:
            continue  # a changed ts is a key change, covered by the key checksum's tests
        for other in _changed(value):
            if other is None and not spec.column(field.name).nullable:
                continue
            changed = to_arrow(spec, [replace(record, **{field.name: other}), *others])
            assert row_checksum(spec, changed) != expected, (field.name, other)
            seen += 1
    assert seen >= len(spec.columns) - 1


def test_a_price_change_keeps_the_key_checksum_and_changes_the_row_checksum() -> None:
    table = to_arrow(TRADES, [SAMPLES[TRADES]])
    moved = table.set_column(5, "price", pa.array([100.75]))
    assert key_checksum(TRADES, moved) == key_checksum(TRADES, table)
    assert row_checksum(TRADES, moved) != row_checksum(TRADES, table)


def test_book_sides_swapped_or_levels_reordered_change_it() -> None:
    book = SAMPLES[BOOKS]
    assert isinstance(book, Book)
    base = row_checksum(BOOKS, to_arrow(BOOKS, [book]))
    swapped = replace(book, bids=book.asks, asks=book.bids)
    reordered = replace(book, bids=list(reversed(book.bids)))
    shifted = replace(book, bids=[], asks=[*book.asks, *book.bids])
    for other in (swapped, reordered, shifted):
        assert row_checksum(BOOKS, to_arrow(BOOKS, [other])) != base


def test_levels_hash_by_value_whatever_the_list_type_or_chunking() -> None:
    ladders = [[[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0]], [[], []], [[7.0, 8.0, 9.0], [1, 2, 3]]]
    array = pa.array(ladders, LEVELS)
    expected = column_hashes(Kind.LEVELS, array).tolist()
    large = array.cast(pa.large_list(pa.large_list(pa.float64())))
    assert column_hashes(Kind.LEVELS, large).tolist() == expected
    chunked = pa.chunked_array([array.slice(0, 1), array.slice(1, 2), array.slice(3)])
    assert column_hashes(Kind.LEVELS, chunked).tolist() == expected
    assert column_hashes(Kind.LEVELS, array.slice(2)).tolist() == expected[2:]


def test_an_empty_ladder_is_one_value_however_a_store_spells_it() -> None:
    """QuestDB exports the `[[], []]` it was given as `[]`; a null ladder reads as no levels."""
    hashes = column_hashes(Kind.LEVELS, pa.array([[[], []], [], None], LEVELS)).tolist()
    assert hashes[0] == hashes[1] == hashes[2]
    assert hashes[0] not in column_hashes(Kind.LEVELS, pa.array([[[0.0], [0.0]]], LEVELS))


def test_nan_and_negative_zero_inside_levels_are_null_and_zero() -> None:
    a = column_hashes(Kind.LEVELS, pa.array([[[float("nan"), -0.0], [1.0, 2.0]]], LEVELS))
    b = column_hashes(Kind.LEVELS, pa.array([[[None, 0.0], [1.0, 2.0]]], LEVELS))
    assert a.tolist() == b.tolist()


def test_a_value_moved_between_columns_changes_it() -> None:
    quote = SAMPLES[QUOTES]
    assert isinstance(quote, Quote)
    moved = replace(quote, bid_sz=None, ask_sz=quote.bid_sz)
    table = to_arrow(QUOTES, [quote])
    assert row_checksum(QUOTES, to_arrow(QUOTES, [moved])) != row_checksum(QUOTES, table)


def test_store_spellings_do_not_matter() -> None:
    """What ClickHouse (LowCardinality as dictionaries), QuestDB (symbols, its own list
    layout) and Parquet hand back for the same rows."""
    record = SAMPLES[BOOKS]
    assert isinstance(record, Book)
    table = to_arrow(BOOKS, [record, replace(record, seq=43, bids=[], asks=[])])
    expected = row_checksum(BOOKS, table)
    spelled = table
    for name in ("exchange", "symbol"):
        index = spelled.schema.get_field_index(name)
        spelled = spelled.set_column(index, name, pc.dictionary_encode(spelled.column(name)))
    index = spelled.schema.get_field_index("ts")
    spelled = spelled.set_column(index, "ts", spelled.column("ts").cast(pa.timestamp("ns")))
    for name in ("bids", "asks"):
        index = spelled.schema.get_field_index(name)
        column = spelled.column(name).cast(pa.large_list(pa.large_list(pa.float64())))
        spelled = spelled.set_column(index, name, column)
    assert row_checksum(BOOKS, spelled) == expected
    reordered = table.select(list(reversed(table.column_names)))
    assert row_checksum(BOOKS, reordered) == expected


@settings(deadline=None)
@given(st.data())
def test_every_spec_sums_the_same_in_any_order_and_per_part(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(SPECS))
    records = data.draw(st.lists(BY_SPEC[spec], min_size=1, max_size=20))
    shuffled = data.draw(st.permutations(records))
    rows, checksum = row_checksum(spec, to_arrow(spec, records))
    assert rows == len(records)
    assert row_checksum(spec, to_arrow(spec, shuffled)) == (rows, checksum)
    half = len(records) // 2
    parts = [row_checksum(spec, to_arrow(spec, p)) for p in (records[:half], records[half:])]
    assert sum(part for _, part in parts) % 2**64 == checksum


def test_an_empty_table_and_a_pinned_value() -> None:
    """The manifest and cold files keep these sums: the algorithm must not move."""
    assert row_checksum(TRADES, arrow_schema(TRADES).empty_table()) == (0, 0)
    tables = {spec.table: row_checksum(spec, to_arrow(spec, [SAMPLES[spec]])) for spec in SPECS}
    assert tables == PINNED


def test_a_missing_column_is_an_error() -> None:
    table = to_arrow(TRADES, [SAMPLES[TRADES]])
    with pytest.raises(ValueError, match="price"):
        row_checksum(TRADES, table.drop_columns(["price"]))
    with pytest.raises(TypeError, match="'bids'"):
        row_checksum(BOOKS, to_arrow(BOOKS, [SAMPLES[BOOKS]]).set_column(5, "bids", pa.array([1])))


PINNED: dict[str, tuple[int, int]] = {
    "trades": (1, 0x09B4_03F6_2B1D_4C57),
    "quotes": (1, 0xDDFB_FB35_8885_B7A4),
    "candles": (1, 0x4F71_E869_EDA8_FF71),
    "books": (1, 0xC590_0160_7470_9FE4),
    "funding": (1, 0x6ED2_983A_85C3_C0A7),
    "liquidations": (1, 0xD61D_7751_71FE_4F50),
    "open_interest": (1, 0x1873_B19B_98FE_31B0),
    "instruments": (1, 0xB41A_80E2_B985_9C4B),
    "prices": (1, 0xB64B_853E_A035_22B5),
}
