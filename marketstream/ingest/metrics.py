"""Prometheus metrics of the ingest process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from marketstream.metrics_server import MetricSet

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SOURCE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000)


class IngestMetrics(MetricSet):
    """Frames, records by type, DLQ, reconnects, book gaps, publish latency and batch sizes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("marketstream_ingest", registry)
        self.frames = FrameCounts("marketstream_ingest")
        self.registry.register(self.frames)
        self.records = self.counter("records", "Records published", "exchange", "type")
        self.dlq = self.counter("dlq", "Frames or records sent to md:dlq", "exchange")
        self.reconnects = self.counter("reconnects", "Connections re-established", "exchange")
        self.gaps = self.counter(
            "book_gaps", "Order book sequence gaps (each triggers a resync)", "exchange", "symbol"
        )
        self.checksums_verified = self.counter(
            "book_checksums_verified",
            "Book updates whose exchange checksum the local book matched",
            "exchange",
        )
        self.checksum_failures = self.counter(
            "book_checksum_failures",
            "Order books that disagreed with the exchange's checksum (each triggers a resync)",
            "exchange",
            "symbol",
        )
        self.resyncs = self.counter(
            "book_resyncs",
            "Order book snapshots applied after a gap or reconnect",
            "exchange",
            "symbol",
        )
        self.publish_latency = self.histogram(
            "publish_seconds", "Time of one Redis pipeline round trip", buckets=_LATENCY_BUCKETS
        )
        self.batch_size = self.histogram(
            "publish_batch_records",
            "Records and dead letters per Redis round trip",
            buckets=_BATCH_BUCKETS,
        )
        self.publish_errors = self.counter("publish_errors", "Failed Redis round trips (retried)")
        self.trimmed = self.counter(
            "trimmed_entries", "Stream entries trimmed (never unacknowledged ones)", "stream"
        )
        self.trim_errors = self.counter(
            "trim_errors", "Stream trims that failed (logged; tried again next interval)"
        )
        self.mapper_errors = self.counter(
            "mapper_errors",
            "Frames whose mapper raised something other than FrameError (sent to md:dlq)",
            "exchange",
        )
        self.session_errors = self.counter(
            "session_errors",
            "Connections ended by an unexpected error (logged with its traceback; reconnected)",
            "exchange",
        )
        self.rest_poll_errors = self.counter(
            "rest_poll_errors",
            "Failed REST polls (open interest; logged and retried with backoff)",
            "exchange",
        )
        self.instrument_refreshes = self.counter(
            "instrument_refreshes",
            "Instrument list fetches, by outcome (ok, failed)",
            "exchange",
            "outcome",
        )
        self.instrument_refresh_errors = self.counter(
            "instrument_refresh_errors",
            "Instrument refreshes ended by an unexpected error (logged; the next one retries)",
        )
        self.connected = self.gauge("connected", "Open exchange connections", "exchange")
        self.source_ticks = self.counter(
            "source_ticks",
            "Token ticks of polled sources, by outcome: met (a price in time) or missed",
            "source",
            "outcome",
        )
        self.source_requests = self.counter(
            "source_requests",
            "Requests to polled sources by answer: ok, retry (429, 5xx), quota, fatal, "
            "no_answer; hedge counts hedged requests sent",
            "source",
            "outcome",
        )
        self.source_request_seconds = self.histogram(
            "source_request_seconds",
            "Time of one request to a polled source",
            "source",
            buckets=_SOURCE_BUCKETS,
        )
        self.source_fetch_lag = self.histogram(
            "source_fetch_seconds",
            "Tick to its answer: when a polled price was received after the tick it is of",
            "source",
            buckets=_SOURCE_BUCKETS,
        )
        self.source_credits = self.counter(
            "source_credits",
            "API credits the requests sent to a polled source cost (in the API's own unit, "
            "such as compute units; one a request where the API counts requests), retries and "
            "hedges included",
            "source",
        )
        self.source_unpriced = self.counter(
            "source_unpriced",
            "Tokens a polled source answered without a price (unknown or untraded tokens)",
            "source",
        )


class FrameSource(Protocol):
    """A connection as `FrameCounts` reads it."""

    @property
    def exchange_name(self) -> str: ...

    @property
    def frames_received(self) -> int:
        """Frames received over the connection's whole life (every session)."""
        ...

    @property
    def last_frame(self) -> float:
        """`time.monotonic()` when the last frame arrived."""
        ...


class FrameCounts:
    """`<prefix>_frames_total` and `<prefix>_last_frame_timestamp_seconds` by exchange, read
    from the connections when scraped: a connection counts its frames in plain attributes,
    because a Prometheus counter and gauge updated per frame (a lock each) cost more than
    the rest of the transport's per-frame bookkeeping."""

    labelnames = ("exchange",)

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._sources: list[FrameSource] = []

    def track(self, source: FrameSource) -> None:
        self._sources.append(source)

    def describe(self) -> Iterator[Metric]:
        """The families without samples (what the registry checks names with)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        frames, last = self._families()
        totals: dict[str, int] = {}
        latest: dict[str, float] = {}
        to_wall = time.time() - time.monotonic()
        for source in self._sources:
            name = source.exchange_name
            totals[name] = totals.get(name, 0) + source.frames_received
            if source.frames_received:
                latest[name] = max(latest.get(name, 0.0), source.last_frame + to_wall)
        for name, total in totals.items():
            frames.add_metric([name], total)
            last.add_metric([name], latest.get(name, 0.0))
        yield frames
        yield last

    def _families(self) -> tuple[CounterMetricFamily, GaugeMetricFamily]:
        frames = CounterMetricFamily(
            f"{self._prefix}_frames", "Frames received", labels=self.labelnames
        )
        last = GaugeMetricFamily(
            f"{self._prefix}_last_frame_timestamp_seconds",
            "Wall-clock time of the last frame received",
            labels=self.labelnames,
        )
        return frames, last
