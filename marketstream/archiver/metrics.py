"""Prometheus metrics of the archiver."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from marketstream.metrics_server import MetricSet

_MOVE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class ArchiveMetrics(MetricSet):
    """Moves and rows per hop and table, move time, failures, and rows held per tier."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("marketstream_archive", registry)
        self.moves = self.counter(
            "moves", "Day partitions moved and verified, per hop and table", "hop", "table"
        )
        self.rows = self.counter(
            "rows", "Rows moved and verified, per hop and table", "hop", "table"
        )
        self.move_seconds = self.histogram(
            "move_seconds",
            "Time of one day partition's move: copy, verify and drop",
            "hop",
            buckets=_MOVE_BUCKETS,
        )
        self.failures = self.counter(
            "failures", "Moves that failed (a store unreachable, a verification mismatch)", "hop"
        )
        self.tier_rows = self.gauge(
            "tier_rows",
            "Rows in the hot and warm tiers per table, after the last run",
            "tier",
            "table",
        )
        self.last_run_failures = self.gauge(
            "last_run_failures",
            "Moves and steps the last run failed (kept at their source for the next run)",
        )
        self.last_success = self.gauge(
            "last_success_timestamp_seconds", "When the last run finished without a failure"
        )
