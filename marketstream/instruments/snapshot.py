"""The catalog to start from, and the snapshot shipped with the package.

`load_catalog`: the shipped snapshot (`marketstream/defaults/instruments.jsonl`) with the
disk cache laid over it, so a cached instrument replaces its shipped record and an
instrument only the snapshot knows stays known. The snapshot is rebuilt from recorded REST
answers (`marketstream instruments snapshot FILE...`) by whatever venues parse instruments,
keeping the configured instruments.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from marketstream.config import PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.instruments.catalog import Catalog
from marketstream.instruments.recorded import instruments_in
from marketstream.instruments.store import read_instruments
from marketstream.replay.recording_format import read_recording
from marketstream.schemas.records import Instrument
from marketstream.venues.base.venue import Venue
from marketstream.venues.registry import VENUES

log = logging.getLogger(__name__)

SHIPPED_SNAPSHOT: Final = Path(__file__).resolve().parent.parent / "defaults" / "instruments.jsonl"


def load_shipped(path: Path = SHIPPED_SNAPSHOT) -> list[Instrument]:
    """The shipped snapshot; a missing file (a broken install) is logged and read as empty."""
    if not path.is_file():
        log.warning("instruments: the shipped snapshot %s is missing", path)
        return []
    return read_instruments(path)


def overlay(base: Catalog, newer: Iterable[Instrument]) -> Catalog:
    """`base` with `newer` replacing the same exchange and symbol whatever their times (a
    recording's own answers describe its frames, however old they are)."""
    fresh = list(newer)
    keys = {(i.exchange, i.symbol) for i in fresh}
    return Catalog([*(i for i in base if (i.exchange, i.symbol) not in keys), *fresh])


def load_catalog(cache: Path | None, shipped: Path = SHIPPED_SNAPSHOT) -> Catalog:
    """The shipped snapshot with the cache (if any) over it; an unreadable cache is logged
    and ignored, so a damaged file never stops ingest."""
    catalog = Catalog(load_shipped(shipped))
    if cache is None or not cache.is_file():
        return catalog
    try:
        cached = read_instruments(cache)
    except MarketStreamError as exc:
        log.warning("instruments: ignoring the cache: %s", exc)
        return catalog
    return overlay(catalog, cached)


def configured_symbols(config: PipelineConfig) -> dict[str, frozenset[str]]:
    """Every configured exchange's symbols, enabled or not (a snapshot serves them all)."""
    return {name: frozenset(ex.symbols) for name, ex in config.exchanges.items()}


@dataclass(slots=True)
class SnapshotBuild:
    """What a rebuild found: the kept instruments and, per exchange that parses instrument
    answers, the configured symbols no answer listed."""

    instruments: list[Instrument] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)
    unparsed: list[str] = field(default_factory=list)  # configured, no instrument parser


def build_snapshot(
    recordings: Sequence[Path],
    wanted: Mapping[str, frozenset[str]],
    venues: Mapping[str, Venue] = VENUES,
    *,
    everything: bool = False,
) -> SnapshotBuild:
    """The configured instruments listed by the recordings' instrument answers, for every
    venue of the registry that parses them (the newest answer of an instrument wins);
    `everything`: every instrument they list, so that recordings of other symbols map too."""
    frames = [frame for path in recordings for frame in read_recording(path) if frame.is_rest]
    build = SnapshotBuild()
    for name, symbols in sorted(wanted.items()):
        venue = venues.get(name)
        if venue is None or venue.parse_instruments is None or venue.instrument_urls is None:
            build.unparsed.append(name)
            continue
        found = Catalog(instruments_in(venue, frames))
        kept = [i for i in found.for_exchange(name) if everything or i.symbol in symbols]
        build.instruments.extend(kept)
        missing = sorted(symbols - {i.symbol for i in kept})
        if missing:
            build.missing[name] = missing
    return build
