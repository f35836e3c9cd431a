"""Arrow layouts: every record survives a trip through Arrow and Parquet bytes exactly."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from marketstream.schemas.arrow import SCHEMA_VERSION, arrow_schema, from_arrow, to_arrow
from marketstream.schemas.columns import SPECS, TableSpec
from marketstream.schemas.records import Record
from tests.unit.strategies import BY_SPEC


@st.composite
def spec_and_records(draw: st.DrawFn) -> tuple[TableSpec, list[Record]]:
    spec = draw(st.sampled_from(SPECS))
    return spec, draw(st.lists(BY_SPEC[spec], max_size=20))


@given(spec_and_records())
def test_arrow_round_trip(case: tuple[TableSpec, list[Record]]) -> None:
    spec, records = case
    table = to_arrow(spec, records)
    assert table.schema == arrow_schema(spec)
    assert from_arrow(spec, table) == records


@given(spec_and_records())
def test_parquet_round_trip(case: tuple[TableSpec, list[Record]]) -> None:
    spec, records = case
    sink = pa.BufferOutputStream()  # pyarrow buffers: reads through io.BytesIO can abort
    pq.write_table(to_arrow(spec, records), sink, compression="zstd")  # at exit (arrow#50482)
    assert from_arrow(spec, pq.read_table(pa.BufferReader(sink.getvalue()))) == records


def test_schema_carries_type_version_and_exact_nanoseconds() -> None:
    for spec in SPECS:
        schema = arrow_schema(spec)
        assert schema.names == list(spec.names)
        assert schema.metadata[b"marketstream.type"] == spec.record_type.encode()
        assert schema.metadata[b"marketstream.schema"] == SCHEMA_VERSION.encode()
        assert schema.field("ts").type == pa.timestamp("ns", tz="UTC")
