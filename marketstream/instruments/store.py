"""Instrument records on disk: one encoded `Instrument` per JSON line (`schemas/codec.py`).

The same format serves the cache that `instruments refresh` and ingest write under the state
directory and the snapshot shipped with the package. Writes are atomic (a temporary file in
the same folder, then a rename), so a reader never sees half a catalog, even after a kill.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from marketstream.config import PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.schemas.codec import DecodeError, decode_record, encode_record
from marketstream.schemas.records import Instrument
from marketstream.services.state import state_root

CACHE_NAME: Final = "instruments.jsonl"


def cache_path(config: PipelineConfig, state_dir: Path | None) -> Path:
    """`<state dir>/instruments.jsonl`: beside services.json, so one `--state-dir` holds all."""
    return state_root(config, state_dir) / CACHE_NAME


def read_instruments(path: Path) -> list[Instrument]:
    """The instruments of a file, in file order; MarketStreamError naming the file and line
    when it cannot be read or a line is not an encoded instrument."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise MarketStreamError(f"cannot read instruments {path}: {exc.strerror or exc}") from None
    instruments: list[Instrument] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = decode_record(line)
        except DecodeError as exc:
            raise MarketStreamError(f"{path} line {number}: {exc}") from None
        if not isinstance(record, Instrument):
            raise MarketStreamError(
                f"{path} line {number}: expected an instrument record, got a "
                f"{type(record).__name__.lower()}"
            )
        instruments.append(record)
    return instruments


def write_instruments(path: Path, instruments: Iterable[Instrument]) -> int:
    """Replace `path` with these instruments (sorted by exchange and symbol, so a rebuilt
    file diffs cleanly), atomically; return how many were written."""
    ordered = sorted(instruments, key=lambda i: (i.exchange, i.symbol))
    data = b"".join(encode_record(i) + b"\n" for i in ordered)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise MarketStreamError(f"cannot write instruments {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; it is public metadata, read by all
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise MarketStreamError(f"cannot write instruments {path}: {exc.strerror or exc}") from None
    return len(ordered)
