"""`make bench`: run every benchmark, print the figures and write them to bench/results.json."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import archive, cluster, cryptofeed_compare, hot, ingest, pipeline, schemas

RESULTS = Path(__file__).with_name("results.json")
SUITES: dict[str, Callable[[], dict[str, Any]]] = {
    "schemas": schemas.run,
    "ingest": ingest.run,
    "cryptofeed": cryptofeed_compare.run,  # optional: {"skipped": why} without cryptofeed
    "hot": hot.run,
    "pipeline": pipeline.run,  # replay -> queryable, ingest and writers as processes
    "archive": archive.run,
    "cluster": cluster.run,  # 1, 2 and 4 writer processes on a 3-node Redis Cluster
}


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(), "machine": machine()}
    for name, suite in SUITES.items():
        print(f"== {name}", flush=True)
        results[name] = suite()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
