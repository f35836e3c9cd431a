"""The real OKX captures of tests/data/captures (see PROVENANCE.md and EXPECTED.md there),
and the instruments OKX listed one minute before that session (May 2022)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from marketstream.replay.recording_format import RecordedFrame, read_recording
from marketstream.schemas.records import Instrument
from marketstream.venues.okx.instruments import parse_instruments

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"


def read_capture(name: str) -> list[RecordedFrame]:
    return list(read_recording(CAPTURES / name))


@cache
def okx_instruments() -> tuple[Instrument, ...]:
    """Every instrument of okx-instruments-rest.jsonl (SPOT, SWAP and FUTURES bodies)."""
    return tuple(
        instrument
        for line in read_capture("okx-instruments-rest.jsonl")
        for instrument in parse_instruments(line.url, line.frame, line.recv_ns)
    )


def okx_instrument(symbol: str) -> Instrument:
    return next(i for i in okx_instruments() if i.symbol == symbol)
