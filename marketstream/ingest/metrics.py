"""Prometheus metrics of the ingest process, in a registry of its own (tests make fresh ones)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000)


class IngestMetrics:
    """Frames, records by type, DLQ, reconnects, book gaps, publish latency and batch sizes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frames = Counter(
            "marketstream_ingest_frames", "Frames received", ["exchange"], registry=r
        )
        self.records = Counter(
            "marketstream_ingest_records", "Records published", ["exchange", "type"], registry=r
        )
        self.dlq = Counter(
            "marketstream_ingest_dlq", "Frames or records sent to md:dlq", ["exchange"], registry=r
        )
        self.reconnects = Counter(
            "marketstream_ingest_reconnects", "Connections re-established", ["exchange"], registry=r
        )
        self.gaps = Counter(
            "marketstream_ingest_book_gaps",
            "Order book sequence gaps (each triggers a resync)",
            ["exchange", "symbol"],
            registry=r,
        )
        self.checksums_verified = Counter(
            "marketstream_ingest_book_checksums_verified",
            "Book updates whose exchange checksum the local book matched",
            ["exchange"],
            registry=r,
        )
        self.checksum_failures = Counter(
            "marketstream_ingest_book_checksum_failures",
            "Order books that disagreed with the exchange's checksum (each triggers a resync)",
            ["exchange", "symbol"],
            registry=r,
        )
        self.resyncs = Counter(
            "marketstream_ingest_book_resyncs",
            "Order book snapshots applied after a gap or reconnect",
            ["exchange", "symbol"],
            registry=r,
        )
        self.publish_latency = Histogram(
            "marketstream_ingest_publish_seconds",
            "Time of one Redis pipeline round trip",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "marketstream_ingest_publish_batch_records",
            "Records and dead letters per Redis round trip",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.publish_errors = Counter(
            "marketstream_ingest_publish_errors", "Failed Redis round trips (retried)", registry=r
        )
        self.trimmed = Counter(
            "marketstream_ingest_trimmed_entries",
            "Stream entries trimmed (never unacknowledged ones)",
            ["stream"],
            registry=r,
        )
        self.trim_errors = Counter(
            "marketstream_ingest_trim_errors",
            "Stream trims that failed (logged; tried again next interval)",
            registry=r,
        )
        self.mapper_errors = Counter(
            "marketstream_ingest_mapper_errors",
            "Frames whose mapper raised something other than FrameError (sent to md:dlq)",
            ["exchange"],
            registry=r,
        )
        self.session_errors = Counter(
            "marketstream_ingest_session_errors",
            "Connections ended by an unexpected error (logged with its traceback; reconnected)",
            ["exchange"],
            registry=r,
        )
        self.rest_poll_errors = Counter(
            "marketstream_ingest_rest_poll_errors",
            "Failed REST polls (open interest; logged and retried with backoff)",
            ["exchange"],
            registry=r,
        )
        self.connected = Gauge(
            "marketstream_ingest_connected", "Open exchange connections", ["exchange"], registry=r
        )
        self.last_frame = Gauge(
            "marketstream_ingest_last_frame_timestamp_seconds",
            "Wall-clock time of the last frame received",
            ["exchange"],
            registry=r,
        )
