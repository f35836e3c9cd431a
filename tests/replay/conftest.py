"""The replay tests serve the real recordings shipped in the repository (`recordings` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.config import PipelineConfig, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def usdm(recordings: Path) -> Path:
    return recordings / "binance-usdm.jsonl"


@pytest.fixture
def coinbase(recordings: Path) -> Path:
    return recordings / "coinbase.jsonl"


@pytest.fixture
def shipped_config() -> PipelineConfig:
    """The repository's configuration without MARKETSTREAM_* overrides from the shell."""
    return load_config(REPO / "configs" / "pipeline.yaml", environ={})
