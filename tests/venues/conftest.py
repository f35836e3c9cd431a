"""Fixtures for the pure ingest tests: the real exchange recordings.

The recordings ship in `tests/data/recordings` (see its README); `$MARKETSTREAM_RECORDINGS`
points the tests at another directory of the same format.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from marketstream.replay.recording_format import RecordedFrame
from marketstream.replay.recording_format import read_recording as read_recording_file
from marketstream.schemas.instruments import parse_symbol
from marketstream.schemas.validation import Limits, validate
from marketstream.venues.base.mapper import BookUpdate, Item

# Frames as the recorder writes them; the shared `recordings` fixture finds the files.
Recorded = RecordedFrame
ReadRecording = Callable[[str], list[Recorded]]


@pytest.fixture(scope="session")
def read_recording(recordings: Path) -> ReadRecording:
    """`read_recording("coinbase.jsonl")` -> its frames in order; fails when the file is absent."""

    def read(name: str) -> list[Recorded]:
        file = recordings / name
        if not file.is_file():
            pytest.fail(f"recording {file} not found")
        return list(read_recording_file(file))

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
