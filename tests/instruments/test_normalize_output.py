"""`normalize` output: written a chunk at a time, and complete up to a bad line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from marketstream.config import IngestConfig
from marketstream.errors import MarketStreamError
from marketstream.ingest.normalize import normalize_recording
from tests.conftest import recordings_path


class _CountingWriter(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)


def test_records_are_written_in_chunks_not_one_call_each() -> None:
    """stdout may be unbuffered (PYTHONUNBUFFERED): a write per record is a system call."""
    out = _CountingWriter()
    summary = normalize_recording(
        recordings_path() / "binance-usdm.jsonl", "binance-usdm", out, IngestConfig()
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == sum(summary.counts.values()) > 500
    assert out.writes < len(lines) / 50


def test_records_before_a_bad_line_are_all_written(tmp_path: Path) -> None:
    good = (recordings_path() / "coinbase.jsonl").read_bytes().splitlines(keepends=True)[:300]
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(good) + b"{not json\n")
    out = io.BytesIO()
    with pytest.raises(MarketStreamError, match="line 301"):
        normalize_recording(path, "coinbase", out, IngestConfig())
    (tmp_path / "ok.jsonl").write_bytes(b"".join(good))
    whole = io.BytesIO()
    normalize_recording(tmp_path / "ok.jsonl", "coinbase", whole, IngestConfig())
    assert out.getvalue() == whole.getvalue() != b""
