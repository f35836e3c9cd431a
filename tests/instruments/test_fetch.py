"""Instrument lists fetched from our replay server, which serves the real captured OKX
answers at their REST paths (see okx_format.py for the test-local parser), and Bybit's
paged listing built around the real v5 records ccxt ships."""

from __future__ import annotations

import dataclasses
import logging
import socket
from pathlib import Path

import orjson
import pytest

from marketstream.config import InstrumentsConfig, PipelineConfig, load_config
from marketstream.instruments.fetch import MAX_PAGES, Target, fetch_all, fetch_exchange, targets
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter
from marketstream.replay.server import ReplayServer
from marketstream.venues.base.venue import Venue
from marketstream.venues.bybit.venue import BYBIT
from marketstream.venues.okx.venue import OKX
from marketstream.venues.registry import DIALECTS, get_venue
from tests.instruments.okx_answers import CAPTURE, captured_answers
from tests.venues.bybit.instruments import captured_records

REPO = Path(__file__).resolve().parents[2]
QUICK = InstrumentsConfig(retries=1, retry_initial_s=0.01, timeout_s=5)


def config_with(environ: dict[str, str]) -> PipelineConfig:
    return load_config(REPO / "configs" / "pipeline.yaml", environ=environ)


def feed_only(path: Path) -> Path:
    """An OKX recording with one feed frame and no REST answer: every GET is a 404."""
    with RecordingWriter(path) as writer:
        writer.write(RecordedFrame(1, "okx", "wss://ws.okx.com:8443/ws/v5/public", "{}"))
    return path


async def test_the_captured_answers_are_fetched_and_parsed() -> None:
    served = captured_answers()
    async with ReplayServer(CAPTURE, DIALECTS) as server:
        outcome = await fetch_exchange(Target(OKX, server.http_url), QUICK)
    assert outcome.ok, outcome.error
    assert [a.body for a in outcome.answers] == [body for _, _, body in served]
    assert [a.url.removeprefix(server.http_url) for a in outcome.answers] == [
        url.removeprefix("https://www.okx.com") for url, _, _ in served
    ]
    # 513 spot + 166 swap + 104 futures listed in the three answers, each kept or refused
    assert len(outcome.instruments) + outcome.refused == 513 + 166 + 104
    by_symbol = {i.symbol: i for i in outcome.instruments}
    swap = by_symbol["BTC-USDT-PERP"]
    assert (swap.native_symbol, swap.kind, swap.contract_value) == (
        "BTC-USDT-SWAP",
        "linear_perpetual",
        0.01,
    )
    future = by_symbol["BTC-USD-20220527"]
    assert (future.kind, future.settle, future.expiry) == (
        "inverse_future",
        "BTC",
        1_653_638_400_000_000_000,
    )


async def test_a_failed_fetch_says_which_exchange_and_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "marketstream.instruments.fetch")
    async with ReplayServer(feed_only(tmp_path / "feed.jsonl"), DIALECTS) as server:
        outcome = await fetch_exchange(Target(OKX, server.http_url), QUICK)
    url = f"{server.http_url}/api/v5/public/instruments?instType=SPOT"
    assert not outcome.ok
    assert outcome.instruments == []
    assert outcome.error == f"GET {url} failed: HTTP 404 Not Found"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"instruments: okx: GET {url} failed: HTTP 404 Not Found; keeping the cached or "
        "shipped catalog"
    ]


async def test_an_unreachable_host_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    outcome = await fetch_exchange(Target(OKX, base), QUICK)
    assert outcome.error is not None
    assert outcome.error.startswith(f"GET {base}/api/v5/public/instruments?instType=SPOT failed")


async def test_one_exchange_failing_leaves_the_others(tmp_path: Path) -> None:
    async with (
        ReplayServer(CAPTURE, DIALECTS) as good,
        ReplayServer(feed_only(tmp_path / "feed.jsonl"), DIALECTS) as bad,
    ):
        venue = OKX
        outcomes = await fetch_all(
            [Target(venue, good.http_url), Target(venue, bad.http_url)], QUICK
        )
    assert [o.ok for o in outcomes] == [True, False]
    assert outcomes[0].instruments


def test_only_venues_that_list_instruments_and_have_a_rest_url_are_asked() -> None:
    config = config_with({"MARKETSTREAM_EXCHANGES__OKX__REST_URL": "http://127.0.0.1:1"})
    unlisted = dataclasses.replace(get_venue("coinbase"), instrument_urls=None)

    def venue_of(name: str) -> Venue:
        return unlisted if name == "coinbase" else get_venue(name)

    chosen = targets(config, ["okx", "coinbase"], venue_of)
    assert [(t.exchange, t.rest_base) for t in chosen] == [("okx", "http://127.0.0.1:1")]
    without_rest = config_with({"MARKETSTREAM_EXCHANGES__OKX__REST_URL": "null"})
    assert targets(without_rest, ["okx"], venue_of) == []
    # a venue without instrument_urls: nothing to ask, no error
    assert targets(config, ["coinbase"], venue_of) == []


BYBIT_REST = "https://api.bybit.com/v5/market/instruments-info"


def bybit_listing(path: Path, pages: list[tuple[str, str, str]]) -> Path:
    """A Bybit recording of instrument answers: (record key, URL query, next cursor) each."""
    records = {f"{c}:{r['symbol']}": r for _, c, r in captured_records()}
    with RecordingWriter(path) as writer:
        writer.write(RecordedFrame(1, "bybit", "wss://stream.bybit.com/v5/public/spot", "{}"))
        for key, query, cursor in pages:
            category = key.split(":")[0]
            result = {"category": category, "list": [records[key]], "nextPageCursor": cursor}
            body = orjson.dumps({"retCode": 0, "retMsg": "OK", "result": result}).decode()
            writer.write(RecordedFrame(2, "bybit", f"{BYBIT_REST}?{query}", body))
    return path


# The linear listing takes two pages: the first names the second with cursor `p2%3D1`.
TWO_PAGES = [
    ("spot:BTCUSDT", "category=spot&limit=1000", ""),
    ("linear:BTCUSDT", "category=linear&limit=1000", "p2%3D1"),
    ("linear:ZRXUSDT", "category=linear&limit=1000&cursor=p2%3D1", ""),
    ("inverse:BTCUSD", "category=inverse&limit=1000", ""),
]


async def test_a_paged_listing_is_followed_to_its_last_page(tmp_path: Path) -> None:
    async with ReplayServer(bybit_listing(tmp_path / "bybit.jsonl", TWO_PAGES), DIALECTS) as s:
        outcome = await fetch_exchange(Target(BYBIT, s.http_url), QUICK)
    assert outcome.ok, outcome.error
    assert [a.url.removeprefix(s.http_url) for a in outcome.answers] == [
        f"/v5/market/instruments-info?{query}" for _, query, _ in TWO_PAGES
    ]
    assert sorted(i.symbol for i in outcome.instruments) == [
        "BTC-USD-PERP", "BTC-USDT", "BTC-USDT-PERP", "ZRX-USDT-PERP",
    ]  # fmt: skip


async def test_a_missing_page_fails_the_whole_listing(tmp_path: Path) -> None:
    """Half a list would look complete: a page that does not come costs every instrument."""
    pages = [page for page in TWO_PAGES if page[0] != "linear:ZRXUSDT"]
    async with ReplayServer(bybit_listing(tmp_path / "bybit.jsonl", pages), DIALECTS) as s:
        outcome = await fetch_exchange(Target(BYBIT, s.http_url), QUICK)
    page = f"{s.http_url}/v5/market/instruments-info?category=linear&limit=1000&cursor=p2%3D1"
    assert outcome.error == f"GET {page} failed: HTTP 404 Not Found"
    assert outcome.instruments == []


async def test_a_listing_whose_cursors_go_round_is_cut_at_max_pages(tmp_path: Path) -> None:
    looping = [
        ("spot:BTCUSDT", "category=spot&limit=1000", ""),
        ("linear:BTCUSDT", "category=linear&limit=1000", "a"),
        ("linear:BTCUSDT", "category=linear&limit=1000&cursor=a", "b"),
        ("linear:ZRXUSDT", "category=linear&limit=1000&cursor=b", "a"),
    ]
    async with ReplayServer(bybit_listing(tmp_path / "bybit.jsonl", looping), DIALECTS) as s:
        outcome = await fetch_exchange(Target(BYBIT, s.http_url), QUICK)
    assert outcome.error is not None
    assert outcome.error.endswith(f"the listing runs past {MAX_PAGES} pages")
    assert outcome.instruments == []
    assert len(outcome.answers) == 1 + MAX_PAGES  # spot, then the linear pages asked
