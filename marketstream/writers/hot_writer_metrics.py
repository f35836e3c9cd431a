"""Prometheus metrics of the hot writer."""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from marketstream.metrics_server import MetricSet

# The issue targets p99 < 50 ms per flush: resolve that region finely.
_WRITE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)
# Live data lands within milliseconds; replayed history lands years late and counts in +Inf.
_FRESHNESS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip


class HotWriterMetrics(MetricSet):
    """Flush latency, batch sizes, records per table, dead letters, retries, lag and freshness."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("marketstream_hot", registry)
        self.write_latency = self.histogram(
            "write_seconds",
            "Time of one QuestDB flush (ILP over HTTP) that QuestDB confirmed",
            buckets=_WRITE_BUCKETS,
        )
        self.batch_size = self.histogram(
            "batch_entries",
            "Stream entries per batch written",
            buckets=_BATCH_BUCKETS,
        )
        self.records = self.counter(
            "records",
            "Records QuestDB confirmed, per table (a rewrite after a retry counts again)",
            "table",
        )
        self.dlq = self.counter(
            "dlq",
            "Entries sent to md:dlq: undecodable, unencodable as ILP, rejected by QuestDB, or "
            "undeliverable (delivered more than hot.max_deliveries times)",
            "cause",
        )
        self.retries = self.counter(
            "retries", "Failed QuestDB writes or Redis round trips, retried with backoff", "cause"
        )
        self.task_errors = self.counter(
            "task_errors",
            "Unexpected errors in the writer's side tasks (logged with a traceback; retried)",
            "task",
        )
        self.recovered = self.counter(
            "recovered_entries",
            "Entries a stopped writer left pending: re-read by name at start, or claimed",
            "how",
        )
        self.lag = self.gauge(
            "stream_lag",
            "Entries not yet delivered to the hot-writer group (XINFO GROUPS lag)",
            "stream",
        )
        self.pending = self.gauge(
            "stream_pending",
            "Entries delivered to the hot-writer group and not yet acknowledged",
            "stream",
        )
        self.freshness = self.histogram(
            "freshness_seconds",
            "Exchange time to queryable: successful flush time minus the record's ts, per "
            "record (WAL apply adds a few ms after the flush)",
            "table",
            buckets=_FRESHNESS_BUCKETS,
        )
        self.receive_freshness = self.histogram(
            "receive_freshness_seconds",
            "Local receive time to queryable, per record that has one (trades, quotes, books): "
            "the pipeline's own latency, meaningful for replays whose exchange times are old",
            "table",
            buckets=_FRESHNESS_BUCKETS,
        )
        self.wal_unapplied = self.gauge(
            "wal_unapplied_txns",
            "QuestDB WAL transactions committed but not yet applied (sequencerTxn - writerTxn)",
            "table",
        )
        self.last_write = self.gauge(
            "last_write_timestamp_seconds", "Wall-clock time of the last flush QuestDB confirmed"
        )


def observe_many(histogram: Histogram, values: np.ndarray[Any, np.dtype[np.float64]]) -> None:
    """`histogram.observe(v)` for every value, counted per bucket with numpy.

    A flush confirms thousands of rows; observing them one by one cost more than writing
    them. The buckets are prometheus_client's own (non-cumulative, `value <= bound`, the
    last bound +Inf), so the exposition is exactly that of one call per value.
    """
    if not len(values):
        return
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    histogram._sum.inc(float(values.sum()))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
