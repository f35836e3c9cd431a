"""Fixtures for the pure ingest tests: the real exchange recordings, skipped when absent.

The recordings are test data kept outside the repository (see /shared/fixtures/README.md):
`$MARKETSTREAM_RECORDINGS`, else `<repo>/../shared/fixtures/recordings`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from marketstream.ingest.events import BookUpdate, Item
from marketstream.schemas.instruments import parse_symbol
from marketstream.schemas.validation import Limits, validate

RECORDINGS_ENV = "MARKETSTREAM_RECORDINGS"
DEFAULT_RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "recordings"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One received frame, as the recorder writes it."""

    recv_ns: int
    exchange: str
    url: str
    frame: str


ReadRecording = Callable[[str], list[Recorded]]


@pytest.fixture(scope="session")
def recordings_dir() -> Path:
    path = Path(os.environ.get(RECORDINGS_ENV) or DEFAULT_RECORDINGS)
    if not path.is_dir():
        pytest.skip(f"exchange recordings not found at {path} (set {RECORDINGS_ENV})")
    return path


@pytest.fixture(scope="session")
def read_recording(recordings_dir: Path) -> ReadRecording:
    """`read_recording("coinbase.jsonl")` -> its frames in order; skips when the file is absent."""

    def read(name: str) -> list[Recorded]:
        file = recordings_dir / name
        if not file.is_file():
            pytest.skip(f"recording {file} not found")
        return [Recorded(**orjson.loads(line)) for line in file.read_bytes().splitlines() if line]

    return read


MAX_FUTURE_SKEW_NS = 5_000_000_000


def assert_valid(item: Item, recv_ns: int) -> None:
    """Records pass the boundary checks; book updates (not records) get the same rules here.

    `validate` accepts any symbol when no symbols are configured, so the normalized form is
    checked too: a wrongly split native symbol fails here.
    """
    parse_symbol(item.symbol)
    limits = Limits(now_ns=recv_ns, max_future_skew_ns=MAX_FUTURE_SKEW_NS, known_symbols=None)
    if not isinstance(item, BookUpdate):
        validate(item, limits)
        return
    assert item.recv_ts == recv_ns
    assert 0 < item.ts <= recv_ns + MAX_FUTURE_SKEW_NS
    for price, size in (*item.bids, *item.asks):
        assert 0 < price < math.inf
        assert size < math.inf
        assert size > 0 if item.is_snapshot else size >= 0  # deltas remove a level by size 0
