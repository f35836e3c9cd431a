"""Fixtures every suite may use."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from marketstream.replay.recording_format import RECORDINGS_ENV, default_recordings

# Hypothesis's per-example deadline (200 ms) is a timing assertion: on a loaded machine it
# failed a correct Parquet round trip. Tests assert behaviour; speed belongs in `make bench`.
settings.register_profile("marketstream", deadline=None)
settings.load_profile("marketstream")


def recordings_path() -> Path:
    """`$MARKETSTREAM_RECORDINGS`, else the recordings shipped in `tests/data/recordings`."""
    return default_recordings()


@pytest.fixture(scope="session")
def recordings() -> Path:
    """The real exchange recordings; a missing directory is an error, not a skip."""
    path = recordings_path()
    if not path.is_dir():
        pytest.fail(f"recordings not found at {path} (unset or fix {RECORDINGS_ENV})")
    return path
