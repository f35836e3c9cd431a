"""Order book gaps and resyncs, read from the ingest processes' Prometheus `/metrics`.

The stored `books` table cannot tell a resync: every book record is a top-N view published
on a cadence (always `is_snapshot`), and sequence numbers keep rising across a resync. Only
the ingest process sees a gap, so its counters are the source. They count since that process
started, not within the report's range; a process that is not reachable gives "n/a".
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from marketstream import http_client
from marketstream.config import IngestConfig
from marketstream.query.hot_queries import QueryInputError

GAPS: Final = "marketstream_ingest_book_gaps_total"
RESYNCS: Final = "marketstream_ingest_book_resyncs_total"
CHECKSUM_FAILURES: Final = "marketstream_ingest_book_checksum_failures_total"
_COUNTERS: Final = (GAPS, RESYNCS, CHECKSUM_FAILURES)
_ANY_ADDRESS: Final = ("0.0.0.0", "::", "")  # noqa: S104 - what a server may bind, not us


@dataclass(frozen=True, slots=True)
class BookCounts:
    gaps: int = 0  # sequence gaps seen (each leads to a resync)
    resyncs: int = 0  # snapshots applied after the first one
    checksum_failures: int = 0  # books that disagreed with the exchange's checksum


@dataclass(slots=True)
class BookCounters:
    """Counts per (exchange, symbol) summed over the processes that answered; `counts` is
    None when none did. `notes` say which did not, and why."""

    counts: dict[tuple[str, str], BookCounts] | None
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def of(self, exchange: str, symbol: str) -> BookCounts | None:
        if self.counts is None:
            return None
        return self.counts.get((exchange, symbol), BookCounts())


def parse_book_counts(text: str) -> dict[tuple[str, str], BookCounts]:
    """The three book counters per (exchange, symbol) from Prometheus text."""
    values: dict[tuple[str, str], dict[str, int]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in _COUNTERS:
                continue
            key = (sample.labels.get("exchange", ""), sample.labels.get("symbol", ""))
            values.setdefault(key, {})[sample.name] = int(sample.value)
    return {
        key: BookCounts(v.get(GAPS, 0), v.get(RESYNCS, 0), v.get(CHECKSUM_FAILURES, 0))
        for key, v in values.items()
    }


def metrics_url(text: str) -> str:
    """`host:port`, `http://host:port` or a full URL: the `/metrics` URL to read."""
    candidate = text.strip()
    if "://" not in candidate:
        candidate = f"http://{candidate}"
    parts = urllib.parse.urlsplit(candidate)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise QueryInputError(
            f"--ingest-metrics {text!r} is not an address: expected host:port or "
            "http://host:port/metrics"
        )
    return urllib.parse.urlunsplit(parts._replace(path=parts.path or "/metrics"))


def default_metrics_urls(ingest: IngestConfig) -> list[str]:
    """The configured ingest `/metrics`; none when the port is picked at start (0)."""
    if ingest.metrics_port == 0:
        return []
    host = "127.0.0.1" if ingest.metrics_host in _ANY_ADDRESS else ingest.metrics_host
    if ":" in host:
        host = f"[{host}]"
    return [f"http://{host}:{ingest.metrics_port}/metrics"]


def read_book_counters(urls: Sequence[str], *, timeout_s: float = 2.0) -> BookCounters:
    """Sum the counters of every URL that answers; note each one that does not."""
    result = BookCounters(counts=None)
    if not urls:
        result.notes.append(
            "book counters n/a: no ingest /metrics address (ingest.metrics_port is 0); "
            "pass --ingest-metrics HOST:PORT"
        )
        return result
    for url in urls:
        try:
            text = _get(url, timeout_s)
            counts = parse_book_counts(text)
        except (OSError, ValueError) as exc:
            result.notes.append(f"book counters n/a from {url}: {exc}")
            continue
        total = result.counts if result.counts is not None else {}
        for key, value in counts.items():
            seen = total.get(key, BookCounts())
            total[key] = BookCounts(
                seen.gaps + value.gaps,
                seen.resyncs + value.resyncs,
                seen.checksum_failures + value.checksum_failures,
            )
        result.counts = total
        result.sources.append(url)
    return result


def _get(url: str, timeout_s: float) -> str:
    answer = http_client.get(url, timeout_s)
    if answer.status != 200:
        raise ValueError(f"HTTP {answer.status} {answer.reason}")
    return answer.body.decode("utf-8", errors="replace")
