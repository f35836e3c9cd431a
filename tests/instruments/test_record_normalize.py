"""`record` captures the instrument lists; the replay server serves them back; `normalize`
maps a recording with the instruments it holds, else with the shipped snapshot.

The OKX venue here lists instruments through the test-local parser of okx_format.py; the
answers and trades are the real captured ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import pytest

import marketstream.ingest.normalize as normalize_module
from marketstream.config import IngestConfig, InstrumentsConfig, PipelineConfig
from marketstream.ingest.normalize import normalize_recording
from marketstream.ingest.recorder import RecordTarget, record, resolve_target
from marketstream.instruments.catalog import Catalog
from marketstream.instruments.fetch import Target, fetch_exchange
from marketstream.instruments.snapshot import load_shipped
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter, read_recording
from marketstream.replay.server import ReplayServer
from marketstream.schemas.records import Instrument
from marketstream.venues.base.mapper import Mapper
from marketstream.venues.base.venue import Venue
from marketstream.venues.okx.venue import OKX
from marketstream.venues.registry import DIALECTS
from tests.instruments.okx_answers import captured_answers

TRADES = Path(__file__).resolve().parents[1] / "data" / "captures" / "okx-trades.jsonl"
WAIT_S = 60.0


def no_config() -> PipelineConfig:
    raise AssertionError("everything was given: the configuration must not be read")


def served_recording(path: Path) -> Path:
    """The captured instrument answers, then the captured trades session."""
    with RecordingWriter(path) as writer:
        for frame in [*read_recording(TRADES.with_name("okx-instruments-rest.jsonl"))]:
            writer.write(frame)
        for frame in read_recording(TRADES):
            writer.write(frame)
    return path


def okx_trades(server: ReplayServer, venue: Venue = OKX) -> RecordTarget:
    """What `record` is to capture from the replay server: OKX's BTC-USDT trades, through
    `venue` (OKX with the test-local instrument parser, or a variant of it)."""
    target = resolve_target(
        "okx",
        url=server.ws_url,
        rest_url=server.http_url,
        symbols=["BTC-USDT"],
        channels=["trades"],
        load_config=no_config,
    )
    return dataclasses.replace(target, exchange=venue)


class MapperSpy:
    """OKX's own mapper, remembering the instruments each one was made with."""

    def __init__(self) -> None:
        self.made_with: list[tuple[Instrument, ...]] = []

    def __call__(self, symbols: Sequence[str], instruments: Sequence[Instrument] = ()) -> Mapper:
        self.made_with.append(tuple(instruments))
        return OKX.make_mapper(symbols, instruments)


async def test_record_captures_the_instrument_lists_first(tmp_path: Path) -> None:
    served = served_recording(tmp_path / "served.jsonl")
    async with ReplayServer(served, DIALECTS, max_speed=True) as server:
        target = okx_trades(server)
        out = tmp_path / "captured.jsonl"
        stats = await asyncio.wait_for(
            record(target, out, max_frames=3, instruments=InstrumentsConfig(retries=0)), WAIT_S
        )
    captured = list(read_recording(out))
    answers = captured_answers()
    assert stats.instrument_lists == 3
    assert [(f.url, f.frame) for f in captured[:3]] == [
        (url.replace("https://www.okx.com", server.http_url), body) for url, _, body in answers
    ]
    assert not any(f.is_rest for f in captured[3:])
    assert stats.frames == 3

    # The capture replays its instrument lists as they were recorded.
    async with ReplayServer(out, DIALECTS) as again:
        outcome = await fetch_exchange(Target(OKX, again.http_url), InstrumentsConfig(retries=0))
    assert [a.body for a in outcome.answers] == [body for _, _, body in answers]


async def test_record_captures_every_page_of_a_paged_listing(tmp_path: Path) -> None:
    """A venue whose listing is paged (as Bybit's): each page is recorded, in order."""
    answers = captured_answers()
    spot, swap = answers[0], answers[1]
    second = f"{spot[0]}&after=2"
    served = tmp_path / "served.jsonl"
    with RecordingWriter(served) as writer:
        writer.write(RecordedFrame(spot[1], "okx", second, swap[2]))
        for frame in read_recording(served_recording(tmp_path / "okx.jsonl")):
            writer.write(frame)

    async with ReplayServer(served, DIALECTS, max_speed=True) as server:
        target = okx_trades(server, dataclasses.replace(OKX, next_instrument_page=spot_paged))
        out = tmp_path / "captured.jsonl"
        stats = await asyncio.wait_for(
            record(target, out, max_frames=3, instruments=InstrumentsConfig(retries=0)), WAIT_S
        )
    rest = [f for f in read_recording(out) if f.is_rest]
    assert stats.instrument_lists == 4
    assert [(f.url.removeprefix(server.http_url), f.frame) for f in rest] == [
        (url.removeprefix("https://www.okx.com"), body)
        for url, _, body in [spot, (second, 0, swap[2]), *answers[1:]]
    ]


def spot_paged(url: str, body: str | bytes) -> str | None:
    """OKX does not page instruments: this variant's spot listing has a second page."""
    return f"{url}&after=2" if url.endswith("instType=SPOT") else None


async def test_a_listing_missing_a_page_is_not_recorded_at_all(tmp_path: Path) -> None:
    """Every page or none: the first page alone would later normalize as the whole list."""
    warnings: list[str] = []
    async with ReplayServer(served_recording(tmp_path / "okx.jsonl"), DIALECTS) as server:
        target = okx_trades(server, dataclasses.replace(OKX, next_instrument_page=spot_paged))
        out = tmp_path / "captured.jsonl"
        stats = await asyncio.wait_for(
            record(
                target,
                out,
                max_frames=3,
                warn=warnings.append,
                instruments=InstrumentsConfig(retries=0),
            ),
            WAIT_S,
        )
    rest = [f.url.removeprefix(server.http_url) for f in read_recording(out) if f.is_rest]
    assert stats.instrument_lists == 2
    assert rest == [url.removeprefix("https://www.okx.com") for url, _, _ in captured_answers()[1:]]
    assert warnings == [
        f"instrument list not recorded: GET {server.http_url}/api/v5/public/instruments"
        "?instType=SPOT&after=2 failed: HTTP 404 Not Found"
    ]


async def test_record_goes_on_without_instrument_lists(tmp_path: Path) -> None:
    """A venue's REST failing costs the lists (a warning), not the capture."""
    async with ReplayServer(TRADES, DIALECTS, max_speed=True) as server:
        target = okx_trades(server)
        warnings: list[str] = []
        stats = await asyncio.wait_for(
            record(
                target,
                tmp_path / "out.jsonl",
                max_frames=3,
                warn=warnings.append,
                instruments=InstrumentsConfig(retries=0),
            ),
            WAIT_S,
        )
    assert (stats.instrument_lists, stats.frames) == (0, 3)
    assert len(warnings) == 3
    assert warnings[0].startswith("instrument list not recorded: GET http://")
    assert warnings[0].endswith("instType=SPOT failed: HTTP 404 Not Found")


def test_normalize_maps_with_the_recorded_instruments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = MapperSpy()
    venue = dataclasses.replace(OKX, make_mapper=spy)
    monkeypatch.setattr(normalize_module, "get_venue", lambda name: venue)
    recording = served_recording(tmp_path / "okx.jsonl")
    summary = normalize_recording(recording, "okx", io.BytesIO(), IngestConfig())

    shipped = Catalog(load_shipped()).for_exchange("okx")
    assert spy.made_with[0] == shipped  # before the answers: the shipped snapshot
    last = {i.symbol: i for i in spy.made_with[-1]}
    assert last["BTC-USDT-PERP"].contract_value == 0.01
    assert last["BTC-USD-20220527"].native_symbol == "BTC-USD-220527"
    assert summary.instrument_answers == 3
    assert summary.instruments == len(last)
    assert summary.counts["trade"] > 0
    assert not any("instruments" in reason for reason in summary.rejected)
    assert "instruments: " in "\n".join(summary.lines("okx"))


def test_normalize_without_answers_uses_the_given_or_shipped_catalog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = MapperSpy()
    venue = dataclasses.replace(OKX, make_mapper=spy)
    monkeypatch.setattr(normalize_module, "get_venue", lambda name: venue)
    summary = normalize_recording(TRADES, "okx", io.BytesIO(), IngestConfig())
    assert summary.instrument_answers == 0
    shipped = Catalog(load_shipped()).for_exchange("okx")
    assert spy.made_with
    assert all(made == shipped for made in spy.made_with)

    spy.made_with.clear()
    url, recv_ns, body = captured_answers()[1]  # the SWAP list
    assert venue.parse_instruments is not None
    given = [i for i in venue.parse_instruments(url, body, recv_ns) if i.symbol == "BTC-USDT-PERP"]
    normalize_recording(TRADES, "okx", io.BytesIO(), IngestConfig(), instruments=given)
    assert spy.made_with
    assert all(made == tuple(given) for made in spy.made_with)


def test_a_venue_without_instrument_lists_normalizes_as_before() -> None:
    """The registry's OKX, whatever it declares: a recording without answers normalizes."""
    summary = normalize_recording(TRADES, "okx", io.BytesIO(), IngestConfig())
    assert summary.instrument_answers == 0
    assert summary.counts["trade"] > 0
