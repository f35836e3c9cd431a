"""Observing a column of values at once counts exactly what one observe() per value does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from marketstream.writers.hot_writer_metrics import observe_many

BUCKETS = (0.005, 0.01, 0.5, 1.0, 60.0)
values = st.floats(min_value=-10, max_value=1e5, allow_nan=False) | st.sampled_from(BUCKETS)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Bucket, count and sum samples by (name, le); `_created` is a clock reading."""
    return {
        (s.name, s.labels.get("le", "")): s.value
        for m in registry.collect()
        for s in m.samples
        if not s.name.endswith("_created")
    }


@settings(deadline=None)
@given(st.lists(values, max_size=50))
def test_observe_many_counts_as_one_observe_per_value(observed: list[float]) -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("h", "h", ["table"], buckets=BUCKETS, registry=one)
    by_many = Histogram("h", "h", ["table"], buckets=BUCKETS, registry=many)
    child = by_one.labels(table="t")
    for value in observed:
        child.observe(value)
    observe_many(by_many.labels(table="t"), np.array(observed, dtype=np.float64))
    expected, got = _samples(one), _samples(many)
    assert got.keys() == expected.keys()
    total = expected.pop(("h_sum", ""))
    assert abs(got.pop(("h_sum", "")) - total) <= 1e-9 * max(1.0, sum(map(abs, observed)))
    assert got == expected
