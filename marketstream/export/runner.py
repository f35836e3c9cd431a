"""Run an export: check it, read day by day, feed the format's writer, then move the finished
files into place and write a manifest. A failed export leaves nothing behind but the error:
files are written into a staging directory inside `out` and moved only when all are done."""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
from tqdm import tqdm

from marketstream.export.candles import count_sources
from marketstream.export.formats import writer_class
from marketstream.export.formats.base import ExportPlan
from marketstream.export.instruments import export_instruments
from marketstream.export.reading import read_day, request_days
from marketstream.export.request import ExportInputError
from marketstream.query.hot_queries import format_ns

if TYPE_CHECKING:
    from marketstream.export.request import ExportRequest
    from marketstream.query.all_tiers import TieredQueries

MANIFEST_PREFIX = "marketstream-export-"


@dataclass
class Extent:
    """What one symbol's rows of one type came to."""

    rows: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    bars: dict[str, dict[str, int]] = field(default_factory=dict)  # candles: by day, source

    def add(self, table: pa.Table, day: str) -> None:
        if table.num_rows == 0:
            return
        times = table.column("ts").cast(pa.int64())
        first, last = times[0].as_py(), times[-1].as_py()
        self.rows += table.num_rows
        self.first_ns = first if self.first_ns is None else min(self.first_ns, first)
        self.last_ns = last if self.last_ns is None else max(self.last_ns, last)
        if "source" in table.column_names:
            self.bars[day] = count_sources(table)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"rows": self.rows}
        if self.first_ns is not None and self.last_ns is not None:
            body |= {"first": format_ns(self.first_ns), "last": format_ns(self.last_ns)}
        if self.bars:
            body["bars_by_day"] = self.bars
        return body


@dataclass
class ExportSummary:
    """What an export wrote: rows by type, its files (in `request.out`), bytes and time."""

    request: ExportRequest
    rows: dict[str, int]
    bars: dict[str, int]  # candles by source: exchange, trades
    files: list[Path]
    bytes: int
    seconds: float
    manifest: Path

    def lines(self) -> list[str]:
        """The summary a terminal shows."""
        rows = ", ".join(f"{kind} {count:,}" for kind, count in self.rows.items())
        text = [
            f"exported {sum(self.rows.values()):,} rows ({rows}) to {self.request.format} "
            f"in {self.request.out}",
            f"{len(self.files)} files, {self.bytes:,} bytes, {self.seconds:.2f} s",
        ]
        if "candles" in self.rows:
            text.append(
                f"candles {self.request.interval}: {self.bars.get('exchange', 0):,} bars from "
                f"the exchange, {self.bars.get('trades', 0):,} built from trades "
                "(where the exchange sent none; by day in the manifest)"
            )
        text.append(f"manifest: {self.manifest}")
        return text


def run_export(
    request: ExportRequest,
    tiered: TieredQueries,
    *,
    instruments_cache: Path | None = None,
    progress: bool | None = None,
) -> ExportSummary:
    """Export `request` from the tiers; ExportInputError before anything is read when the
    request cannot be done (a type the format does not hold, an output file already there).
    `progress`: a progress bar on stderr (default: when stderr is a terminal)."""
    began = time.monotonic()
    writer_type = writer_class(request.format, request.types)
    out = request.out
    if out.exists() and not out.is_dir():
        raise ExportInputError(f"--out {out} is a file: expected a directory")
    stored = tiered.instruments(request.exchange)
    instruments = export_instruments(request.exchange, request.symbols, stored, instruments_cache)
    staging = out / f".{MANIFEST_PREFIX}{uuid.uuid4().hex[:12]}"
    plan = ExportPlan(request, instruments, staging)
    there = [str(path) for path in writer_type.planned(plan) if (out / path).exists()]
    if there:
        raise ExportInputError(
            f"--out {out} already holds {', '.join(there[:3])}"
            f"{' ...' if len(there) > 3 else ''}: an export never overwrites or mixes with "
            "files already there; expected a new directory, or remove them"
        )
    days = request_days(request)
    extents = {(s, k): Extent() for s in request.symbols for k in request.types}
    staging.mkdir(parents=True)
    try:
        writer = writer_type(plan)
        show = sys.stderr.isatty() if progress is None else progress
        with tqdm(
            total=len(days) * len(request.symbols),
            unit="day",
            desc=f"export {request.format}",
            disable=not show,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as bar:
            for day, low, high in days:
                bar.set_postfix_str(day.isoformat(), refresh=False)
                for symbol in request.symbols:
                    for kind in request.types:
                        piece = read_day(tiered, request, symbol, kind, day, low, high)
                        writer.write(piece)
                        extents[symbol, kind].add(piece.table, day.isoformat())
                    bar.update(1)
        files = _move_into(out, staging, writer.close())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = _write_manifest(request, extents, files)
    rows = {k: sum(extents[s, k].rows for s in request.symbols) for k in request.types}
    bars: dict[str, int] = {}
    for extent in extents.values():
        for counts in extent.bars.values():
            for source, count in counts.items():
                bars[source] = bars.get(source, 0) + count
    return ExportSummary(
        request=request,
        rows=rows,
        bars=bars,
        files=files,
        bytes=sum(path.stat().st_size for path in files),
        seconds=time.monotonic() - began,
        manifest=manifest,
    )


def _move_into(out: Path, staging: Path, written: list[Path]) -> list[Path]:
    """Each finished file from staging to its place in `out` (one rename: same filesystem)."""
    placed = []
    for relative in written:
        target = out / relative
        if target.exists():  # appeared while the export ran
            raise ExportInputError(f"{target} appeared during the export: not overwritten")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, target)
        placed.append(target)
    return placed


def _write_manifest(
    request: ExportRequest, extents: dict[tuple[str, str], Extent], files: list[Path]
) -> Path:
    """What was asked, what each symbol and type came to, and every file written."""
    now = datetime.now(UTC)
    body = {
        "format": request.format,
        "exchange": request.exchange,
        "symbols": list(request.symbols),
        "types": list(request.types),
        "interval": request.interval if "candles" in request.types else None,
        "start": format_ns(request.start_ns),
        "end": format_ns(request.end_ns),
        "exported_at": now.isoformat(),
        "extents": {
            symbol: {kind: extents[symbol, kind].as_json() for kind in request.types}
            for symbol in request.symbols
        },
        "files": [str(path.relative_to(request.out)) for path in files],
    }
    path = request.out / f"{MANIFEST_PREFIX}{now:%Y%m%dT%H%M%S%fZ}.json"
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return path
