"""What several suites share: the local services on a temporary state directory, and
generated history loaded into QuestDB and archived down the tiers."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from marketstream.config import PipelineConfig, load_config
from marketstream.generate.history import HistoryConfig, generate
from marketstream.generate.hot_load import LoadSummary, load_history
from marketstream.run.processes import create_schema
from marketstream.services.manager import start_services, stop_services
from marketstream.wiring import build_archiver, questdb_http
from marketstream.writers.hot_writer_questdb import wal_applied

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "pipeline.yaml"


@contextmanager
def running_services() -> Iterator[tuple[PipelineConfig, Path]]:
    """(configuration, state directory) of freshly started local services, stopped after."""
    config = load_config(CONFIG, environ={})
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        start_services(config, state)
        try:
            yield config, state
        finally:
            stop_services(config, state)


def load_tiered(
    state: Path, history: HistoryConfig, days: int, horizons: Mapping[str, str]
) -> LoadSummary:
    """`days` days of history up to today into QuestDB (tables and the 1m view, as `run`
    makes them), then one archive run with `horizons` (MARKETSTREAM_HORIZONS__*)."""
    config = load_config(CONFIG, environ=horizons)
    http = questdb_http(config, state)
    create_schema(http.base_url)
    today = datetime.now(UTC).date()
    loaded = load_history(http, generate(history, today - timedelta(days=days - 1), today))
    while not wal_applied(http):
        time.sleep(0.05)
    archiver = build_archiver(config, state)
    archiver.prepare()
    report = archiver.run_once()
    if report.failed:
        raise RuntimeError(f"archive moves failed: {report.failed}")
    return loaded
