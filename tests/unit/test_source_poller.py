"""The tick scheduler of polled sources against scripted answers: aligned ticks, retries after
429/5xx, hedges, quota pauses, fatal answers and missed ticks. Real asyncio, a fake API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from marketstream.config import SourceConfig
from marketstream.errors import MarketStreamError
from marketstream.http_client import HttpAnswer, HttpError
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.polling.poller import SourceFatalError, SourcePoller
from marketstream.schemas.records import Price
from marketstream.sources.base.source import (
    Mapped,
    Outcome,
    PolledSource,
    SourceAnswerError,
    Verdict,
)

SOL = "So11111111111111111111111111111111111111112"
JUP = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"


def _map(body: bytes, wanted: Mapping[str, str], tick_ns: int, recv_ns: int) -> Mapped:
    try:
        prices = orjson.loads(body)
        assert isinstance(prices, dict)
    except (orjson.JSONDecodeError, AssertionError):
        raise SourceAnswerError(f"fake: expected a JSON object, got {body[:20]!r}") from None
    found = [
        Price("jupiter", symbol, tick_ns, recv_ns, prices[mint])
        for mint, symbol in wanted.items()
        if mint in prices
    ]
    return Mapped(found, tuple(m for m in wanted if m not in prices))


def _classify(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
    after = headers.get("retry-after")
    wait = float(after) if after is not None else None
    if status == 200:
        return Verdict(Outcome.OK, "ok")
    if status == 400:
        return Verdict(Outcome.QUOTA, "quota spent", wait)
    if status in (401, 403):
        return Verdict(Outcome.FATAL, "the key is not valid")
    return Verdict(Outcome.RETRY, f"HTTP {status}", wait)


FAKE = PolledSource(
    name="jupiter",
    quote="USD",
    default_url="http://127.0.0.1:9",
    max_batch=2,
    target=lambda ids: "/p?ids=" + ",".join(ids),
    map_answer=_map,
    classify=_classify,
    key_header="x-api-key",
    key_required=False,
)


@dataclass
class Sink:
    records: list[Price] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)

    def add(self, record: Price) -> None:
        self.records.append(record)

    def add_dead_letter(
        self,
        *,
        exchange: str,
        reason: str,
        frame: str | bytes,
        recv_ts: int,
        record: Price | None = None,
    ) -> None:
        self.dead.append(reason)


class ScriptedApi:
    """Answers per call in the order scripted, then `then`; each step is a status (with an
    optional retry-after), "hang" (never answers), "cut" (no answer) or "junk" (bad body)."""

    def __init__(self, steps: Sequence[Any] = (), then: Any = 200) -> None:
        self.steps = list(steps)
        self.then = then
        self.calls: list[str] = []

    async def __call__(self, target: str) -> HttpAnswer:
        self.calls.append(target)
        step = self.steps.pop(0) if self.steps else self.then
        if step == "hang":
            await asyncio.Event().wait()
        if step == "cut":
            raise HttpError("[Errno 104] Connection reset by peer")
        if step == "junk":
            return HttpAnswer(200, {}, b"<html>oops</html>")
        status, after = step if isinstance(step, tuple) else (step, None)
        ids = target.split("=", 1)[1].split(",")
        body = orjson.dumps({mint: 1.5 for mint in ids}) if status == 200 else b"{}"
        headers = {"retry-after": str(after)} if after is not None else {}
        return HttpAnswer(status, headers, body)


def _config(**changes: Any) -> SourceConfig:
    base: dict[str, Any] = {
        "cadence_s": 0.2,
        "deadline_s": 2.0,
        "hedge_after_s": None,
        "retry_initial_s": 0.01,
        "max_rps": 100,
        "burst": 10,
        "symbols": {"SOL": SOL, "JUP": JUP, "BONK": BONK},
    }
    return SourceConfig.model_validate(base | changes)


async def _run(
    api: ScriptedApi, config: SourceConfig, ticks: int, sink: Sink | None = None
) -> tuple[SourcePoller, Sink]:
    """Poll until `ticks` ticks have been seen in the records (or 10 s), then halt."""
    sink = sink or Sink()
    poller = SourcePoller(
        FAKE, config, api, publisher=sink, metrics=IngestMetrics(), max_future_skew_ns=10**9
    )
    halt = asyncio.Event()
    runner = asyncio.create_task(poller.run(halt))
    for _ in range(1000):
        seen = {r.ts for r in sink.records} | {m.tick_ns for m in poller.missed}
        if len(seen) >= ticks or runner.done():
            break
        await asyncio.sleep(0.01)
    halt.set()
    await asyncio.wait_for(runner, 10)
    return poller, sink


def _by_tick(records: list[Price]) -> dict[int, list[str]]:
    ticks: dict[int, list[str]] = {}
    for record in records:
        ticks.setdefault(record.ts, []).append(record.symbol)
    return ticks


async def test_every_tick_is_clock_aligned_and_prices_every_token_once() -> None:
    poller, sink = await _run(ScriptedApi(), _config(), ticks=4)
    ticks = _by_tick(sink.records)
    cadence = 200_000_000
    assert all(ts % cadence == 0 for ts in ticks)
    first, last = min(ticks), max(ticks)
    assert sorted(ticks) == list(range(first, last + 1, cadence))  # no tick left out
    assert all(sorted(s) == ["BONK-USD", "JUP-USD", "SOL-USD"] for s in ticks.values())
    assert all(r.recv_ts >= r.ts for r in sink.records)
    assert poller.ticks_missed == 0
    credits = poller.metrics.source_credits.labels("jupiter")._value.get()
    assert credits == poller.requests  # one credit a request, retries and hedges too
    # two requests per tick: the three tokens in batches of at most two
    assert len(poller.targets) == 2
    assert poller.batches == [(SOL, JUP), (BONK,)]


async def test_429_5xx_and_cut_connections_are_retried_within_the_tick() -> None:
    api = ScriptedApi([(429, 0), 503, "cut", "junk"])
    poller, sink = await _run(api, _config(symbols={"SOL": SOL}), ticks=2)
    assert poller.ticks_missed == 0
    assert _by_tick(sink.records)[min(r.ts for r in sink.records)] == ["SOL-USD"]
    assert len(api.calls) >= 6  # four failures, then an answer for each of two ticks
    assert sink.dead
    assert "expected a JSON object" in sink.dead[0]


async def test_a_request_with_no_answer_is_hedged_and_the_hedge_wins() -> None:
    api = ScriptedApi(["hang"])
    config = _config(symbols={"SOL": SOL}, hedge_after_s=0.05)
    poller, sink = await _run(api, config, ticks=2)
    assert poller.hedges >= 1
    assert poller.ticks_missed == 0
    assert len(_by_tick(sink.records)) >= 2


async def test_a_tick_with_no_good_answer_by_its_deadline_is_missed_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = ScriptedApi(then=503)
    config = _config(symbols={"SOL": SOL}, deadline_s=0.3)
    with caplog.at_level(logging.WARNING):
        poller, sink = await _run(api, config, ticks=2)
    assert sink.records == []
    assert poller.ticks_missed >= 2
    assert poller.ticks_met == 0
    assert "missed for SOL-USD: HTTP 503" in caplog.text
    _healthy, detail = poller.health()
    assert detail["ticks_missed"] == poller.ticks_missed
    assert detail["recent_missed"][0]["reason"] == "HTTP 503"


async def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    """The API asks for 30 s: the tick is missed at once, not sent late."""
    api = ScriptedApi([(429, 30)])
    config = _config(symbols={"SOL": SOL}, deadline_s=0.5)
    poller, _ = await _run(api, config, ticks=2)
    assert poller.ticks_missed >= 2
    assert len(api.calls) == 1  # every later tick waits for the hold, which outlasts it
    assert poller.limiter.held_until > 0


async def test_a_spent_quota_stops_the_tick_without_retrying() -> None:
    api = ScriptedApi([(400, 0.5)], then=200)
    config = _config(symbols={"SOL": SOL}, deadline_s=0.3)
    poller, sink = await _run(api, config, ticks=4)
    first_met = min(r.ts for r in sink.records)
    missed = [m.tick_ns for m in poller.missed]
    assert missed
    assert max(missed) < first_met
    assert poller.missed[0].reason == "quota spent"


async def test_a_fatal_answer_stops_the_source_with_its_cause() -> None:
    api = ScriptedApi([401])
    with pytest.raises(SourceFatalError, match="jupiter: HTTP 401: the key is not valid"):
        await _run(api, _config(symbols={"SOL": SOL}), ticks=3)


async def test_a_token_without_a_price_is_unpriced_not_missed() -> None:
    class Partial(ScriptedApi):
        async def __call__(self, target: str) -> HttpAnswer:
            return HttpAnswer(200, {}, orjson.dumps({SOL: 2.0}))

    poller, sink = await _run(Partial(), _config(symbols={"SOL": SOL, "JUP": JUP}), ticks=2)
    assert {r.symbol for r in sink.records} == {"SOL-USD"}
    assert poller.ticks_missed == 0


async def test_a_price_that_fails_validation_goes_to_the_dead_letters() -> None:
    class Zero(ScriptedApi):
        async def __call__(self, target: str) -> HttpAnswer:
            return HttpAnswer(200, {}, orjson.dumps({SOL: 0.0, JUP: 3.0}))

    _, sink = await _run(Zero(), _config(symbols={"SOL": SOL, "JUP": JUP}), ticks=2)
    assert {r.symbol for r in sink.records} == {"JUP-USD"}
    assert sink.dead
    assert "price 0.0 is not a positive finite number" in sink.dead[0]


def test_a_cadence_above_the_account_limit_is_refused_naming_the_keys() -> None:
    config = _config(cadence_s=1, max_rps=1)  # two requests a tick
    with pytest.raises(
        MarketStreamError, match=r"sources\.jupiter: 3 tokens every 1 s take 2 request\(s\) a tick"
    ):
        SourcePoller(FAKE, config, ScriptedApi(), publisher=Sink(), metrics=IngestMetrics(),
                     max_future_skew_ns=0)  # fmt: skip


async def test_max_ticks_polls_that_many_ticks_then_idles_healthy() -> None:
    sink = Sink()
    config = _config(symbols={"SOL": SOL}, max_ticks=3)
    poller = SourcePoller(
        FAKE, config, ScriptedApi(), publisher=sink, metrics=IngestMetrics(),
        max_future_skew_ns=10**9,
    )  # fmt: skip
    halt = asyncio.Event()
    runner = asyncio.create_task(poller.run(halt))
    for _ in range(500):
        if poller.done:
            break
        await asyncio.sleep(0.01)
    assert poller.done
    assert len(_by_tick(sink.records)) == 3
    assert poller.health()[0]
    halt.set()
    await asyncio.wait_for(runner, 5)
