"""Union of a day's rows from two places, one row per key: how a re-run stays idempotent.

A day can already be partly in the destination (a run killed after its copy, late rows that
reached the hot tier after the day moved). The destination then gets the union, and where
both hold a key the source's row wins: it is the newer version (a candle's later update).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketstream.schemas.columns import TableSpec

_ORDER = "__marketstream_order"


def union_by_key(spec: TableSpec, newer: pa.Table, older: pa.Table) -> pa.Table:
    """Rows of `newer`, plus those of `older` whose key `newer` lacks, in newer-first order."""
    if older.num_rows == 0:
        return newer
    both = pa.concat_tables([newer, older])
    both = both.append_column(_ORDER, pa.array(np.arange(both.num_rows, dtype=np.int64)))
    firsts = both.group_by(list(spec.dedup_keys), use_threads=False).aggregate([(_ORDER, "min")])
    keep = pc.sort_indices(firsts.column(f"{_ORDER}_min"))
    rows = both.take(pc.take(firsts.column(f"{_ORDER}_min"), keep))
    return rows.drop_columns([_ORDER])
