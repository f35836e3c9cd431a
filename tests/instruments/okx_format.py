"""A minimal reader of OKX's `/api/v5/public/instruments` answers, for these tests only.

Until the OKX venue ships its own `parse_instruments`, the plumbing is tested with this
test-local parser wired into a copy of the OKX venue: a double of the exchange's REST
*format*, not of any service. The answers it reads are the real captured ones
(`tests/data/captures/okx-instruments-rest.jsonl`), served by our replay server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Final

import orjson

from marketstream.schemas.records import Instrument
from marketstream.venues.base.mapper import FrameError
from marketstream.venues.base.venue import Venue
from marketstream.venues.okx.venue import OKX

CAPTURE: Final = (
    Path(__file__).resolve().parents[1] / "data" / "captures" / "okx-instruments-rest.jsonl"
)
INST_TYPES: Final = ("SPOT", "SWAP", "FUTURES")


def instrument_urls(rest_base: str) -> list[str]:
    base = rest_base.rstrip("/")
    return [f"{base}/api/v5/public/instruments?instType={kind}" for kind in INST_TYPES]


def parse_instruments(url: str, body: str | bytes, read_ts_ns: int) -> list[Instrument]:
    try:
        answer: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FrameError(f"{url}: not JSON") from None
    if not isinstance(answer, dict) or answer.get("code") != "0":
        raise FrameError(f"{url}: expected an answer with code 0")
    return [i for item in answer["data"] if (i := _one(item, read_ts_ns)) is not None]


def _one(item: dict[str, str], ts: int) -> Instrument | None:
    expiry: int | None = None
    if item["instType"] == "SPOT":
        base, quote = item["baseCcy"], item["quoteCcy"]
        symbol, kind, settle, value, multiplier = f"{base}-{quote}", "spot", quote, 1.0, 1.0
    else:
        base, quote = item["uly"].split("-")
        inverse = item["ctType"] == "inverse"
        if item["instType"] == "SWAP":
            symbol = f"{base}-{quote}-PERP"
            kind = "inverse_perpetual" if inverse else "linear_perpetual"
        elif item["instType"] == "FUTURES":
            expiry = int(item["expTime"]) * 1_000_000
            day = dt.datetime.fromtimestamp(expiry / 1e9, dt.UTC)
            symbol = f"{base}-{quote}-{day:%Y%m%d}"
            kind = "inverse_future" if inverse else "linear_future"
        else:
            return None
        settle, value, multiplier = item["settleCcy"], float(item["ctVal"]), float(item["ctMult"])
    return Instrument(
        exchange="okx",
        symbol=symbol,
        ts=ts,
        native_symbol=item["instId"],
        kind=kind,  # type: ignore[arg-type]
        base=base,
        quote=quote,
        settle=settle,
        contract_value=value,
        contract_multiplier=multiplier,
        tick_size=float(item["tickSz"]),
        lot_size=float(item["lotSz"]),
        expiry=expiry,
        status=item["state"],
    )


def okx_with_instruments(venue: Venue = OKX) -> Venue:
    """The OKX venue with this parser: what the venue will declare once it lists instruments."""
    return dataclasses.replace(
        venue, instrument_urls=instrument_urls, parse_instruments=parse_instruments
    )


def captured_answers() -> list[tuple[str, int, str]]:
    """(url, recv_ns, body) of the captured answers, in file order."""
    lines = [orjson.loads(line) for line in CAPTURE.read_bytes().splitlines() if line.strip()]
    return [(line["url"], line["recv_ns"], line["frame"]) for line in lines]
