"""`marketstream export` of one day of trades, per format, on real services.

`TRADES_PER_DAY` generated trades a day (with quotes and the exchange's 1m candles) for
`DAYS` days up to today are loaded into QuestDB and archived with hot and warm horizons of
one and two days: today is hot, yesterday warm, the day before cold. Each export runs as a
user runs it, `marketstream export ...` in a subprocess; its own summary line gives the
rows and seconds (reading the tiers and writing the files, not the interpreter's start).

- per format, the cold day: tardis-csv, freqtrade and nautilus (`--type trades`), vectorbt
  (`--type candles`: its rows are 1m bars, read from the exchange's candles and the trades);
- tardis-csv trades of a day from each tier, to show what the tier's read costs;
- tardis-csv trades of all three days, whose peak RSS should stay at one day's (each
  export's VmHWM, sampled every 50 ms while it runs).

NautilusTrader runs from .venv-nautilus (`make nautilus-env`; `make bench` builds it);
without it that row says why. Each export's row count is checked against the day's trades.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.local_services import ROOT, load_tiered, running_services
from marketstream.generate.history import HistoryConfig
from marketstream.tiers.days import day_start_ns
from tests.integration.serve_process import serve_env

NAUTILUS = ROOT / ".venv-nautilus" / "bin" / "marketstream"
DAYS = 3
TRADES_PER_DAY = 500_000  # a busy day; each day is one QuestDB load batch (< 100 MB)
HISTORY = HistoryConfig(
    exchanges=("binance",), symbols=("BTC-USDT",), trades_per_day=TRADES_PER_DAY
)
HORIZONS = {"MARKETSTREAM_HORIZONS__HOT_DAYS": "1", "MARKETSTREAM_HORIZONS__WARM_DAYS": "2"}
TIER_OF_OFFSET = {0: "hot", 1: "warm", 2: "cold"}
SUMMARY = re.compile(r"exported ([\d,]+) rows .*\n(\d+) files, ([\d,]+) bytes, ([\d.]+) s")


def _load(state: Path) -> dict[int, int]:
    """The trades of each generated day, by its offset from today."""
    loaded = load_tiered(state, HISTORY, DAYS, HORIZONS)
    today = datetime.now(UTC).date()
    return {(today - day).days: rows for day, (rows, _) in loaded.truth["trades"].items()}


def _export(  # noqa: PLR0917 - one run's parameters
    state: Path, out: Path, fmt: str, kind: str, offset: int, days: int = 1
) -> dict[str, Any]:
    """`days` days from today - offset exported as a user runs it; its summary's figures and
    the process's peak RSS."""
    first = datetime.now(UTC).date() - timedelta(days=offset)
    command = [sys.executable, "-m", "marketstream"]
    if fmt == "nautilus":
        if not NAUTILUS.exists():
            return {"skipped": f"{NAUTILUS} missing: run `make nautilus-env`"}
        command = [str(NAUTILUS)]
    argv = [*command, "export", "--to", fmt, "--exchange", "binance", "--symbol", "BTC-USDT"]
    argv += ["--type", kind, "--start", str(day_start_ns(first))]
    argv += ["--end", str(day_start_ns(first + timedelta(days=days))), "--out", str(out)]
    argv += ["--state-dir", str(state), "--no-progress"]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(argv, env=serve_env({}), stdout=stdout, stderr=stderr)
        peak_kb = 0
        while child.poll() is None:  # VmHWM: the peak RSS of the exported image, not the fork
            peak_kb = max(peak_kb, _high_water_kb(child.pid))
            time.sleep(0.05)
        stdout.seek(0)
        stderr.seek(0)
        text, errors = stdout.read().decode(), stderr.read().decode()
    found = SUMMARY.search(text)
    if child.returncode != 0 or found is None:
        raise RuntimeError(f"export --to {fmt} failed: {text[-500:]} {errors[-2000:]}")
    rows, seconds = int(found[1].replace(",", "")), float(found[4])
    return {
        "tier": TIER_OF_OFFSET[offset] if days == 1 else "all",
        "type": kind,
        "days": days,
        "rows": rows,
        "files": int(found[2]),
        "bytes": int(found[3].replace(",", "")),
        "seconds": seconds,
        "rows_per_s": round(rows / seconds) if seconds else None,
        "peak_rss_mb": round(peak_kb / 1024),
    }


def _high_water_kb(pid: int) -> int:
    """The process's peak resident set so far (Linux), 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run() -> dict[str, Any]:
    with running_services() as (_, state), tempfile.TemporaryDirectory() as tmp:
        trades = _load(state)
        results: dict[str, Any] = {"trades_per_day": trades[2], "formats": {}, "tiers": {}}
        runs = [(fmt, "trades", 2) for fmt in ("tardis-csv", "freqtrade", "nautilus")]
        runs += [("vectorbt", "candles", 2), ("tardis-csv", "trades", 1)]
        runs.append(("tardis-csv", "trades", 0))
        for fmt, kind, offset in runs:
            figures = _export(state, Path(tmp) / f"{fmt}-{offset}", fmt, kind, offset)
            if kind == "trades" and figures.get("rows", trades[offset]) != trades[offset]:
                raise AssertionError(f"{fmt}: {figures['rows']} rows of {trades[offset]}")
            if fmt == "tardis-csv":
                results["tiers"][TIER_OF_OFFSET[offset]] = figures
            if offset == 2:
                results["formats"][fmt] = figures
        # memory stays at a day's: three days (one per tier) against one
        whole = _export(state, Path(tmp) / "three-days", "tardis-csv", "trades", 2, DAYS)
        if whole["rows"] != sum(trades.values()):
            raise AssertionError(f"3 days: {whole['rows']} rows of {sum(trades.values())}")
        results["three_days"] = whole
    _print(results)
    return results


def _print(results: dict[str, Any]) -> None:
    print(f"export: a day of {results['trades_per_day']:,} generated trades (binance BTC-USDT)")
    for fmt, figures in results["formats"].items():
        if "skipped" in figures:
            print(f"  {fmt:<11} skipped: {figures['skipped']}")
            continue
        print(
            f"  {fmt:<11} {figures['type']:<7} {figures['rows']:>9,} rows in "
            f"{figures['seconds']:6.2f} s = {figures['rows_per_s']:>9,}/s, "
            f"{figures['bytes']:,} bytes ({figures['tier']} tier)"
        )
    for tier, figures in results["tiers"].items():
        print(
            f"  tardis-csv from the {tier} tier: {figures['rows_per_s']:,} rows/s, "
            f"peak RSS {figures['peak_rss_mb']} MB"
        )
    whole = results["three_days"]
    print(
        f"  tardis-csv, {whole['days']} days (every tier): {whole['rows']:,} rows, "
        f"{whole['rows_per_s']:,} rows/s, peak RSS {whole['peak_rss_mb']} MB"
    )
