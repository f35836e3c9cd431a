"""`make bench`: run every benchmark, print the figures and write them to bench/results.json.

It ends with the issue's headline figures against their targets (`bench/summary.py`), also
written under "summary". A suite that fails (counts that do not match raise) is reported as
an error in its place, the others still run, and the exit status is 1.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    archive,
    cluster,
    cryptofeed_compare,
    export,
    freshness,
    hot,
    ingest,
    pipeline,
    schemas,
    serve,
    sources,
    summary,
)

RESULTS = Path(__file__).with_name("results.json")
SUITES: dict[str, Callable[[], dict[str, Any]]] = {
    "schemas": schemas.run,
    "ingest": ingest.run,
    "cryptofeed": cryptofeed_compare.run,  # optional: {"skipped": why} without cryptofeed
    "hot": hot.run,
    "pipeline": pipeline.run,  # replay -> queryable, ingest and writers as processes
    "freshness": freshness.run,  # receive -> written at a paced 20k records/s, as processes
    "archive": archive.run,
    "cluster": cluster.run,  # 1, 2 and 4 writer processes on a 3-node Redis Cluster
    "serve": serve.run,  # the HTTP/WebSocket API over every tier
    "export": export.run,  # a day of trades to each backtesting format
    "sources": sources.run,  # 15 and 150 polled tokens at 1 s through injected faults
}


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
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
    started = time.perf_counter()
    failed = False
    seconds: dict[str, float] = {}
    for name, suite in SUITES.items():
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        try:
            results[name] = suite()
        except Exception as exc:  # reported in its place; the other suites still run
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
        seconds[name] = round(time.perf_counter() - began, 1)
    results["seconds"] = {**seconds, "total": round(time.perf_counter() - started, 1)}
    results["summary"] = summary.headline(results)
    print(summary.table(results["summary"]))
    print(f"bench took {results['seconds']['total']:.0f} s ({results['machine']['cores']} cores)")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
