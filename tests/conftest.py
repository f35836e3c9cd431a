"""Fixtures every suite may use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

RECORDINGS_ENV = "MARKETSTREAM_RECORDINGS"
DEFAULT_RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "recordings"


def recordings_path() -> Path:
    """`$MARKETSTREAM_RECORDINGS`, else `../shared/fixtures/recordings` beside the repository."""
    return Path(os.environ.get(RECORDINGS_ENV) or DEFAULT_RECORDINGS)


@pytest.fixture(scope="session")
def recordings() -> Path:
    """The real exchange recordings (test data kept outside the repository); skip if absent."""
    path = recordings_path()
    if not path.is_dir():
        pytest.skip(f"recordings not found at {path} (set {RECORDINGS_ENV})")
    return path
