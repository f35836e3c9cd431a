"""OKX's instrument metadata: `GET /api/v5/public/instruments?instType=SPOT|SWAP|FUTURES`.

Spot sizes are base currency; swaps and futures count contracts of `ctVal` x `ctMult` units
of `ctValCcy`: the base currency for `linear` contracts, the quote currency (USD) for
`inverse` ones. A future's normalized symbol carries its expiry day (UTC), taken from
`expTime` rather than from the instId's `YYMMDD`, so the two can be checked against each
other by the tests.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.records import Instrument, InstrumentKind
from marketstream.venues.base.listing import listed
from marketstream.venues.base.mapper import FrameError, answer_of
from marketstream.venues.base.parsing import JsonObject, field, load_object, objects, show, text
from marketstream.venues.okx.symbols import NAME

INSTRUMENTS_PATH: Final = "/api/v5/public/instruments"
INST_TYPES: Final = ("SPOT", "SWAP", "FUTURES")
_NS_PER_MS: Final = 1_000_000
_KINDS: Final[dict[tuple[str, str], InstrumentKind]] = {
    ("SWAP", "linear"): "linear_perpetual",
    ("SWAP", "inverse"): "inverse_perpetual",
    ("FUTURES", "linear"): "linear_future",
    ("FUTURES", "inverse"): "inverse_future",
}


def instrument_urls(rest_base: str) -> list[str]:
    """One request per instrument type the pipeline maps (options are not)."""
    base = rest_base.rstrip("/")
    return [f"{base}{INSTRUMENTS_PATH}?instType={inst_type}" for inst_type in INST_TYPES]


def parse_instruments(url: str, body: str | bytes, read_ts_ns: int) -> list[Instrument]:
    """`{"code": "0", "data": [...]}` -> instruments; FrameError for an error answer or a
    malformed entry. Entries whose names do not fit the symbol grammar (options, OKX's
    `BTC-USD_UM_XPERP-...` style products) are left out: no feed of ours maps them."""
    with answer_of(NAME, url):
        message = load_object(body)
        code = field(message, "code", "instruments")
        if code not in ("0", 0):
            raise FrameError(f"instruments: error {show(code)}: {show(message.get('msg'))}")
        found = (_instrument(item, read_ts_ns) for item in objects(message, "data", "instruments"))
        return [instrument for instrument in found if instrument is not None]


def _decimal(item: JsonObject, key: str, what: str, default: float | None = None) -> float:
    value = field(item, key, what)
    if value == "" and default is not None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FrameError(f"{what}: {key} {show(value)} is not a decimal number") from None
    if not number > 0:
        raise FrameError(f"{what}: {key} {show(value)} is not a positive number")
    return number


def _expiry_ns(item: JsonObject, what: str) -> int:
    value = field(item, "expTime", what)
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value) * _NS_PER_MS
    raise FrameError(f"{what}: expTime {show(value)} is not a time in milliseconds")


def _instrument(item: JsonObject, read_ts_ns: int) -> Instrument | None:
    inst_id = text(item, "instId", "instrument")
    what = f"instrument {inst_id}"
    inst_type = text(item, "instType", what)
    expiry: int | None = None
    if inst_type == "SPOT":
        kind: InstrumentKind = "spot"
        base, quote = text(item, "baseCcy", what), text(item, "quoteCcy", what)
        settle = quote
        contract_value = contract_multiplier = 1.0
    elif inst_type in ("SWAP", "FUTURES"):
        ct_type = text(item, "ctType", what)
        found = _KINDS.get((inst_type, ct_type))
        if found is None:
            raise FrameError(f"{what}: ctType {show(ct_type)} is not 'linear' or 'inverse'")
        kind = found
        # The underlying (`uly`, later also `instFamily`) names base and quote.
        family = item.get("instFamily") or text(item, "uly", what)
        base, dash, quote = str(family).partition("-")
        settle = text(item, "settleCcy", what)
        contract_value = _decimal(item, "ctVal", what)
        contract_multiplier = _decimal(item, "ctMult", what, default=1.0)
        if not dash:
            return None
        if inst_type == "FUTURES":
            expiry = _expiry_ns(item, what)
    else:
        return None  # options and anything newer: not mapped
    return listed(
        NAME,
        inst_id,
        base,
        quote,
        read_ts_ns=read_ts_ns,
        tick_size=_decimal(item, "tickSz", what),
        lot_size=_decimal(item, "lotSz", what),
        status=text(item, "state", what),
        kind=kind,
        settle=settle,
        expiry=expiry,
        contract_value=contract_value,
        contract_multiplier=contract_multiplier,
    )
