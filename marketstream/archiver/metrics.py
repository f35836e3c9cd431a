"""Prometheus metrics of the archiver, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ArchiveMetrics:
    """Moves and rows per hop and table, move time, failures, and rows held per tier."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.moves = Counter(
            "marketstream_archive_moves",
            "Day partitions moved and verified, per hop and table",
            ["hop", "table"],
            registry=r,
        )
        self.rows = Counter(
            "marketstream_archive_rows",
            "Rows moved and verified, per hop and table",
            ["hop", "table"],
            registry=r,
        )
        self.move_seconds = Histogram(
            "marketstream_archive_move_seconds",
            "Time of one day partition's move: copy, verify and drop",
            ["hop"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=r,
        )
        self.failures = Counter(
            "marketstream_archive_failures",
            "Moves that failed (a store unreachable, a verification mismatch)",
            ["hop"],
            registry=r,
        )
        self.tier_rows = Gauge(
            "marketstream_archive_tier_rows",
            "Rows in the hot and warm tiers per table, after the last run",
            ["tier", "table"],
            registry=r,
        )
        self.last_run_failures = Gauge(
            "marketstream_archive_last_run_failures",
            "Moves and steps the last run failed (kept at their source for the next run)",
            registry=r,
        )
        self.last_success = Gauge(
            "marketstream_archive_last_success_timestamp_seconds",
            "When the last run finished without a failure",
            registry=r,
        )
