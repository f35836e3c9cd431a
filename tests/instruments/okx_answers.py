"""The real captured OKX instrument answers (`tests/data/captures`) the instrument
plumbing is tested with: served by our replay server, parsed by the OKX venue's own
`parse_instruments`."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import orjson

CAPTURE: Final = (
    Path(__file__).resolve().parents[1] / "data" / "captures" / "okx-instruments-rest.jsonl"
)
INST_TYPES: Final = ("SPOT", "SWAP", "FUTURES")


def captured_answers() -> list[tuple[str, int, str]]:
    """(url, recv_ns, body) of the captured answers, in file order."""
    lines = [orjson.loads(line) for line in CAPTURE.read_bytes().splitlines() if line.strip()]
    return [(line["url"], line["recv_ns"], line["frame"]) for line in lines]
