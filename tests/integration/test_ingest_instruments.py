"""Ingest's instruments against a real Redis and our replay server serving the real captured
OKX instrument answers (the OKX venue wired with the test-local parser of
tests.instruments.okx_answers.py): fetched before the mappers are made, the configured ones
published to md:instruments:okx, a change replaces the mappers and is published once, and
the refresh loop survives its errors with /healthz telling the truth."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import msgspec
import orjson
import pytest
import redis.asyncio

from marketstream.config import IngestConfig, PipelineConfig, StreamsConfig, load_config
from marketstream.ingest.instruments import InstrumentKeeper
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.ingest.service import IngestService, plan_connections
from marketstream.instruments.store import read_instruments
from marketstream.replay.recording_format import RecordingWriter, read_recording
from marketstream.replay.server import ReplayServer
from marketstream.schemas.codec import decode_entry
from marketstream.schemas.instruments import EXCHANGES
from marketstream.schemas.records import Instrument
from marketstream.tiers.redis_bus import read_range, stream_key
from marketstream.venues.base.mapper import Mapper
from marketstream.venues.base.venue import Venue
from marketstream.venues.okx.venue import OKX
from marketstream.venues.registry import DIALECTS
from tests.instruments.okx_answers import CAPTURE
from tests.integration.endpoints import CONFIG_FILE

pytestmark = pytest.mark.integration

TRADES = CAPTURE.with_name("okx-trades.jsonl")
CONFIGURED = ("BTC-USDT", "BTC-USDT-PERP")
WAIT_S = 60.0
INSTRUMENTS = stream_key("instruments", "okx")


class MapperSpy:
    def __init__(self) -> None:
        self.made_with: list[dict[str, Instrument]] = []

    def __call__(self, symbols: Sequence[str], instruments: Sequence[Instrument] = ()) -> Mapper:
        self.made_with.append({i.symbol: i for i in instruments})
        return OKX.make_mapper(symbols, instruments)


def config_for(server: ReplayServer, **instruments: str) -> PipelineConfig:
    environ = {
        f"MARKETSTREAM_EXCHANGES__{name.upper().replace('-', '_')}__ENABLED": "false"
        for name in EXCHANGES
    }
    environ.update(
        {
            "MARKETSTREAM_EXCHANGES__OKX__ENABLED": "true",
            "MARKETSTREAM_EXCHANGES__OKX__URL": server.ws_url,
            "MARKETSTREAM_EXCHANGES__OKX__REST_URL": server.http_url,
            "MARKETSTREAM_EXCHANGES__OKX__SYMBOLS": f"[{', '.join(CONFIGURED)}]",
            "MARKETSTREAM_EXCHANGES__OKX__CHANNELS": "[trades]",
            "MARKETSTREAM_INSTRUMENTS__RETRIES": "0",
        }
    )
    environ.update({f"MARKETSTREAM_INSTRUMENTS__{k.upper()}": v for k, v in instruments.items()})
    return load_config(CONFIG_FILE, environ=environ)


def with_changed_swap(path: Path, ct_val: str) -> Path:
    """The captured answers with BTC-USDT-SWAP's contract value changed (a listing change)."""
    with RecordingWriter(path) as writer:
        for frame in read_recording(CAPTURE):
            body = orjson.loads(frame.frame)
            for item in body["data"]:
                if item["instId"] == "BTC-USDT-SWAP":
                    item["ctVal"] = ct_val
            writer.write(msgspec.structs.replace(frame, frame=orjson.dumps(body).decode()))
    return path


def answers_then_trades(path: Path) -> Path:
    with RecordingWriter(path) as writer:
        for frame in [*read_recording(CAPTURE), *read_recording(TRADES)]:
            writer.write(frame)
    return path


async def published_instruments(client: redis.asyncio.Redis) -> list[Instrument]:
    records = [decode_entry(fields) for _, fields in await read_range(client, INSTRUMENTS)]
    assert all(isinstance(r, Instrument) for r in records)
    return records  # type: ignore[return-value]


def redis_url_of(client: redis.asyncio.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


async def test_ingest_fetches_first_publishes_configured_and_swaps_mappers(
    client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    spy = MapperSpy()
    venue: Venue = dataclasses.replace(OKX, make_mapper=spy)
    changed = with_changed_swap(tmp_path / "changed.jsonl", "0.001")
    async with (
        ReplayServer(answers_then_trades(tmp_path / "okx.jsonl"), DIALECTS) as server,
        ReplayServer(changed, DIALECTS) as changed_server,
    ):
        config = config_for(server)
        plans = [dataclasses.replace(p, exchange=venue) for p in plan_connections(config)]
        cache = tmp_path / "state" / "instruments.jsonl"
        service = IngestService(config, redis_url_of(client), plans=plans, instrument_cache=cache)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop, metrics_port=0))
        try:
            async with asyncio.timeout(WAIT_S):
                while not service.connections or service.publisher.published < 2:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.02)
            # the mappers were made once the fetch was done, with its instruments
            assert spy.made_with[0]["BTC-USDT-PERP"].contract_value == 0.01
            assert cache.is_file()
            healthy, detail = service.health()
            assert healthy, detail
            assert detail["instruments"]["last_refresh_ns"] is not None
            assert detail["instruments"]["failed_exchanges"] == {}
            first = await published_instruments(client)
            assert sorted(i.symbol for i in first) == sorted(CONFIGURED)

            # a refresh finding a change: new mappers, the changed instrument published once
            mappers = [c.processor.mapper for c in service.connections]
            service.instruments.config = config_for(changed_server)
            assert await service.instruments.refresh() == {"okx"}
            assert all(
                c.processor.mapper is not old
                for c, old in zip(service.connections, mappers, strict=True)
            )
            assert spy.made_with[-1]["BTC-USDT-PERP"].contract_value == 0.001
            assert await service.instruments.refresh() == set()  # same answer: no change
            await service.publisher.wait_flushed()
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT_S)
    published = await published_instruments(client)
    assert [(i.symbol, i.contract_value) for i in published[2:]] == [("BTC-USDT-PERP", 0.001)]


async def test_a_failed_fetch_keeps_the_catalog_and_ingest_runs(
    client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    feed_only = tmp_path / "feed.jsonl"
    with RecordingWriter(feed_only) as writer:
        for frame in read_recording(TRADES):
            writer.write(frame)
    cache = tmp_path / "instruments.jsonl"
    async with (
        ReplayServer(CAPTURE, DIALECTS) as answers,
        ReplayServer(feed_only, DIALECTS) as bare,
    ):
        keeper = make_keeper(config_for(answers), client, cache)
        await keeper.start()
        before = {i.symbol: i for i in keeper.catalog.for_exchange("okx")}
        keeper.config = config_for(bare)
        assert await keeper.refresh() == set()
    assert {i.symbol: i for i in keeper.catalog.for_exchange("okx")} == before
    assert "okx" in keeper.failed_exchanges
    assert keeper.health()[0]  # the exchange's REST away: reported, the feeds go on


def make_keeper(
    config: PipelineConfig, client: redis.asyncio.Redis, cache: Path | None
) -> InstrumentKeeper:
    metrics = IngestMetrics()
    publisher = Publisher(
        client, PublisherSettings.from_config(IngestConfig(), StreamsConfig()), metrics
    )
    venue = OKX
    return InstrumentKeeper(
        config,
        {"okx": frozenset(CONFIGURED)},
        publisher,
        metrics,
        cache=cache,
        venue_of=lambda name: venue,
    )


async def test_the_refresh_loop_survives_errors_and_health_says_so(
    client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")  # the cache's folder is a file: every write fails
    async with ReplayServer(CAPTURE, DIALECTS) as server:
        config = config_for(server, refresh_interval_s="0.05")
        keeper = make_keeper(config, client, blocker / "instruments.jsonl")
        await keeper.start()
        assert keeper.health()[0] is False
        assert "cannot write instruments" in str(keeper.health()[1]["error"])
        stop = asyncio.Event()
        loop = asyncio.create_task(keeper.run(stop))
        errors = keeper.metrics.instrument_refresh_errors
        async with asyncio.timeout(WAIT_S):
            while errors._value.get() < 3:
                await asyncio.sleep(0.02)
        assert not loop.done()  # it recovered each time
        blocker.unlink()  # the disk is back: the next refresh succeeds
        async with asyncio.timeout(WAIT_S):
            while not keeper.health()[0]:
                await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(loop, WAIT_S)
    assert [i.symbol for i in read_instruments(blocker / "instruments.jsonl")]  # written now


async def test_disabled_fetches_nothing_and_publishes_what_it_has(
    client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    async with ReplayServer(CAPTURE, DIALECTS) as server:
        keeper = make_keeper(config_for(server, enabled="false"), client, None)
        await keeper.start()
    assert keeper.last_refresh_ns is None  # nothing was fetched
    assert keeper.failed_exchanges == {}
    shipped = [i for i in keeper.catalog.for_exchange("okx") if i.symbol in CONFIGURED]
    assert keeper.publisher.buffered == len(shipped)
