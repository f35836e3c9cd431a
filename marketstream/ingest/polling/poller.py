"""One polled source on a clock: a tick every `cadence_s`, aligned to the epoch, and for each
tick one request per batch of tokens, made to succeed within the tick's deadline.

A tick's poll sends its request when the account's budget allows; with no answer after
`hedge_after_s` it sends one more (a hedge), and the first good answer wins. A 429 or a 5xx
or a cut connection is retried after the API's `Retry-After` (or the source's own reset
header), else after a doubling pause, as long as the answer can still come before the
deadline. A tick that still has no answer is missed: logged with the tick and the reason,
counted (`marketstream_ingest_source_ticks_total{outcome="missed"}`) and shown in /healthz;
the quality report finds it again as a missing row. Records carry the tick as `ts`, so a
hedge or a retry that also answers writes the same row again (dedup), never a second one.

A source that can never succeed (bad key, bad request) stops ingest with the cause logged;
a spent quota pauses the source until the API's reset, every tick in between missed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from marketstream.config import SourceConfig
from marketstream.errors import MarketStreamError
from marketstream.event_loop import wait_until_set
from marketstream.http_client import HttpAnswer, HttpError
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.polling.limiter import RequestLimiter
from marketstream.schemas.records import Price
from marketstream.schemas.validation import PASSES, InvalidRecordError, Limits, validate
from marketstream.sources.base.source import Outcome, PolledSource, SourceAnswerError, Verdict

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[HttpAnswer]]
# (target, answer, receive ns): every answer as it came, for `record`
OnAnswer = Callable[[str, HttpAnswer, int], None]
MAX_IN_FLIGHT = 3  # requests of one tick's batch at once (first, hedge, a retry)
QUOTA_PAUSE_S = 600.0  # a spent quota with no reset time given
MISSED_KEPT = 20  # recent missed ticks shown in /healthz
SECONDS_PER_MONTH = 30 * 86_400


class PriceSink(Protocol):
    """Where polled records go: the publisher in `ingest`, a counter in `record`."""

    def add(self, record: Price) -> None: ...

    def add_dead_letter(
        self,
        *,
        exchange: str,
        reason: str,
        frame: str | bytes,
        recv_ts: int,
        record: Price | None = None,
    ) -> None: ...


class SourceFatalError(MarketStreamError):
    """The source answered that no request will ever succeed (a bad key, a bad request)."""


@dataclass(frozen=True, slots=True)
class MissedTick:
    tick_ns: int
    symbols: tuple[str, ...]
    reason: str


def monthly_credits(source: PolledSource, config: SourceConfig) -> float:
    """What polling `config`'s tokens every tick costs in 30 days, in the API's credits."""
    batches = source.batches(list(config.symbols.values()))
    per_tick = sum(source.credits(len(batch)) for batch in batches)
    return per_tick * SECONDS_PER_MONTH / config.cadence_s


def budget_problem(source: PolledSource, config: SourceConfig) -> str | None:
    """Why the account's limits cannot carry this cadence (one line naming the keys), or
    None: the ticks alone must fit `max_rps`, and `credits_per_month` when it is set."""
    name = source.name
    requests = len(source.batches(list(config.symbols.values())))
    needed = requests / config.cadence_s
    if needed > config.max_rps + 1e-9:
        return (
            f"sources.{name}: {len(config.symbols)} tokens every {config.cadence_s:g} s take "
            f"{requests} request(s) a tick, {needed:g} a second, above max_rps "
            f"{config.max_rps:g}: raise cadence_s or max_rps (the account's limit)"
        )
    budget, monthly = config.credits_per_month, monthly_credits(source, config)
    if budget is not None and monthly > budget:
        return (
            f"sources.{name}: {len(config.symbols)} tokens every {config.cadence_s:g} s cost "
            f"{monthly:,.0f} credits in 30 days, above credits_per_month {budget:,}: raise "
            "cadence_s or poll fewer tokens"
        )
    return None


@dataclass(slots=True)
class _Tick:
    """One tick of one batch while it is being polled."""

    tick_ns: int
    ids: Sequence[str]
    target: str
    send_at: float | None  # loop time of the next request; None: none planned
    hedge_at: float | None = None
    attempts: set[asyncio.Task[tuple[HttpAnswer, int]]] = field(default_factory=set)
    failures: int = 0
    quota: bool = False
    reason: str = "no answer before the deadline"


def _utc(tick_ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(tick_ns // 1_000_000_000))


class SourcePoller:
    """Polls one source for its configured tokens until halted (see the module docstring)."""

    def __init__(
        self,
        source: PolledSource,
        config: SourceConfig,
        fetch: Fetch,
        *,
        publisher: PriceSink,
        metrics: IngestMetrics,
        max_future_skew_ns: int,
        on_answer: OnAnswer | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.source = source
        self.config = config
        self.name = source.name
        self._fetch = fetch
        self.publisher = publisher
        self.metrics = metrics
        self.max_future_skew_ns = max_future_skew_ns
        self.on_answer = on_answer
        self._wall_ns = wall_ns
        self.symbols_by_id = {mint: f"{sym}-{source.quote}" for sym, mint in config.symbols.items()}
        self.batches = source.batches(list(config.symbols.values()))
        self.targets = [source.target(batch) for batch in self.batches]
        self.cadence_ns = round(config.cadence_s * 1e9)
        self.deadline_ns = round(config.deadline * 1e9)
        problem = budget_problem(source, config)
        if problem is not None:
            raise MarketStreamError(problem)
        self.credits = {
            target: source.credits(len(batch))
            for batch, target in zip(self.batches, self.targets, strict=True)
        }
        self.credits_per_month = monthly_credits(source, config)
        self.limiter = RequestLimiter(config.max_rps, config.burst)
        self.known = frozenset(self.symbols_by_id.values())
        self.ticks_met = 0  # token ticks
        self.ticks_missed = 0
        self.requests = 0
        self.hedges = 0
        self.last_met = time.monotonic()
        self.last_error: str | None = None
        self.missed: collections.deque[MissedTick] = collections.deque(maxlen=MISSED_KEPT)
        self.failure: str | None = None
        self.done = False  # max_ticks polled
        self._stop = asyncio.Event()
        self._polls: set[asyncio.Task[None]] = set()

    # --- the clock ---------------------------------------------------------------------------
    async def run(self, halt: asyncio.Event) -> None:
        """Tick until `halt` is set; SourceFatalError when the source can never answer."""
        watcher = asyncio.create_task(self._watch(halt))
        tick = self._wall_ns() // self.cadence_ns + 1
        last = None if self.config.max_ticks is None else tick + self.config.max_ticks
        try:
            while not self._stop.is_set() and (last is None or tick < last):
                tick_ns = tick * self.cadence_ns
                delay = (tick_ns - self._wall_ns()) / 1e9
                if delay > 0 and await wait_until_set(self._stop, delay):
                    break
                behind = self._wall_ns() - tick_ns
                if behind > self.deadline_ns:  # the process was stopped or starved: say so
                    skipped = behind // self.cadence_ns
                    for k in range(tick, tick + skipped):
                        self._missed_all(k * self.cadence_ns, "the poller was not running then")
                    tick += skipped
                    continue
                for batch, target in zip(self.batches, self.targets, strict=True):
                    task = asyncio.create_task(
                        self._poll(tick_ns, batch, target), name=f"{self.name}-tick"
                    )
                    self._polls.add(task)
                    task.add_done_callback(self._poll_done)
                tick += 1
            if self._polls:  # the ticks in flight finish within their deadline
                _, late = await asyncio.wait(self._polls, timeout=self.deadline_ns / 1e9 + 1)
                for task in late:
                    task.cancel()
        finally:
            watcher.cancel()
            for task in self._polls:
                task.cancel()
        if self.failure is not None:
            raise SourceFatalError(self.failure)
        if not halt.is_set():  # max_ticks done: idle (and healthy) until ingest stops
            self.done = True
            log.info("%s: %d ticks polled; polling stopped", self.name, self.config.max_ticks)
            await halt.wait()

    async def _watch(self, halt: asyncio.Event) -> None:
        await halt.wait()
        self._stop.set()

    def _poll_done(self, task: asyncio.Task[None]) -> None:
        self._polls.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, SourceFatalError):
            if self.failure is None:
                self.failure = str(exc)
                log.error("%s: %s; stopping", self.name, exc)
            self._stop.set()
        elif exc is not None:  # _poll catches what an answer can raise: this is a bug
            self.failure = f"a poll of {self.name} failed: {exc!r}"
            log.error("%s", self.failure, exc_info=exc)
            self._stop.set()

    # --- one tick of one batch ---------------------------------------------------------------
    async def _poll(self, tick_ns: int, ids: Sequence[str], target: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (tick_ns + self.deadline_ns - self._wall_ns()) / 1e9
        tick = _Tick(tick_ns, ids, target, send_at=loop.time())
        try:
            while (now := loop.time()) < deadline:
                due = tick.send_at is not None and now >= tick.send_at
                if due and len(tick.attempts) < MAX_IN_FLIGHT:
                    if not await self.limiter.take(deadline):
                        tick.reason += "; the rate limit left no request before the deadline"
                        break
                    self._send(tick, loop.time())
                    continue
                if not tick.attempts and tick.send_at is None:
                    break  # a spent quota: nothing more to try for this tick
                wakes = [deadline] if tick.hedge_at is None else [deadline, tick.hedge_at]
                if tick.send_at is not None and len(tick.attempts) < MAX_IN_FLIGHT:
                    wakes.append(tick.send_at)
                timeout = max(0.0, min(wakes) - now)
                if not tick.attempts:
                    await asyncio.sleep(timeout)
                    continue
                done, _ = await asyncio.wait(
                    tick.attempts, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    self._maybe_hedge(tick, loop.time())
                    continue
                for task in done:
                    tick.attempts.discard(task)
                    verdict = self._read(task, tick_ns, ids, target)
                    if verdict is None:
                        return  # met
                    self._after_failure(tick, verdict, loop.time())
        finally:
            for task in tick.attempts:
                task.cancel()
        self._missed_batch(tick_ns, ids, tick.reason)

    def _send(self, tick: _Tick, now: float) -> None:
        tick.attempts.add(asyncio.create_task(self._get(tick.target)))
        tick.send_at = None
        hedge_after = self.config.hedge_after_s
        tick.hedge_at = None if hedge_after is None else now + hedge_after

    def _maybe_hedge(self, tick: _Tick, now: float) -> None:
        """No answer yet at the hedge time: one more request, if the budget has one now."""
        if tick.hedge_at is None or now < tick.hedge_at:
            return
        tick.hedge_at = None
        if len(tick.attempts) < MAX_IN_FLIGHT and self.limiter.try_take():
            self.hedges += 1
            self.metrics.source_requests.labels(self.name, "hedge").inc()
            tick.attempts.add(asyncio.create_task(self._get(tick.target)))

    def _after_failure(self, tick: _Tick, verdict: Verdict, now: float) -> None:
        """When to try again: after the API's wait or a doubling pause; never on a quota."""
        tick.failures += 1
        tick.reason = verdict.reason
        if verdict.outcome is Outcome.QUOTA:
            tick.quota = True
            self.limiter.hold(verdict.retry_after_s or QUOTA_PAUSE_S)
            tick.send_at = tick.hedge_at = None
            return
        pause = self.config.retry_initial_s * 2 ** (tick.failures - 1)
        if verdict.retry_after_s is not None:
            self.limiter.hold(verdict.retry_after_s)
            pause = max(pause, verdict.retry_after_s)
        if tick.send_at is None and not tick.quota:
            tick.send_at = now + pause

    async def _get(self, target: str) -> tuple[HttpAnswer, int]:
        self.requests += 1
        self.metrics.source_credits.labels(self.name).inc(self.credits[target])
        started = time.perf_counter()
        try:
            answer = await self._fetch(target)
        finally:
            self.metrics.source_request_seconds.labels(self.name).observe(
                time.perf_counter() - started
            )
        return answer, self._wall_ns()

    def _read(
        self,
        task: asyncio.Task[tuple[HttpAnswer, int]],
        tick_ns: int,
        ids: Sequence[str],
        target: str,
    ) -> Verdict | None:
        """None when the answer met the tick; else why not (FATAL raises)."""
        requests = self.metrics.source_requests
        try:
            answer, recv_ns = task.result()
        except (HttpError, OSError, TimeoutError) as exc:
            requests.labels(self.name, "no_answer").inc()
            return self._failed(Verdict(Outcome.RETRY, f"no answer: {exc}"))
        if self.on_answer is not None:
            self.on_answer(target, answer, recv_ns)
        verdict = self.source.classify(answer.status, answer.headers, answer.body, recv_ns / 1e9)
        requests.labels(self.name, verdict.outcome.value).inc()
        if verdict.outcome is Outcome.FATAL:
            raise SourceFatalError(f"{self.name}: HTTP {answer.status}: {verdict.reason}")
        if verdict.outcome is not Outcome.OK:
            return self._failed(verdict)
        wanted = {mint: self.symbols_by_id[mint] for mint in ids}
        try:
            mapped = self.source.map_answer(answer.body, wanted, tick_ns, recv_ns)
        except SourceAnswerError as exc:
            self.publisher.add_dead_letter(
                exchange=self.name, reason=str(exc), frame=answer.body, recv_ts=recv_ns
            )
            return self._failed(Verdict(Outcome.RETRY, f"unreadable answer: {exc}"))
        self._publish(mapped.prices, answer.body, recv_ns)
        if mapped.unpriced:
            self.metrics.source_unpriced.labels(self.name).inc(len(mapped.unpriced))
            log.info(
                "%s: no price for %s at %s",
                self.name,
                ", ".join(wanted.get(m, m) for m in mapped.unpriced),
                _utc(tick_ns),
            )
        met = len(ids) - len(mapped.unpriced)
        self.ticks_met += met
        self.metrics.source_ticks.labels(self.name, "met").inc(met)
        self.metrics.source_fetch_lag.labels(self.name).observe((recv_ns - tick_ns) / 1e9)
        self.last_met = time.monotonic()
        return None

    def _failed(self, verdict: Verdict) -> Verdict:
        self.last_error = verdict.reason
        log.debug("%s: %s", self.name, verdict.reason)
        return verdict

    def _publish(self, prices: list[Price], body: bytes, recv_ns: int) -> None:
        latest = recv_ns + self.max_future_skew_ns
        passes = PASSES[Price]
        for record in prices:
            if passes(record, latest, self.known):
                self.publisher.add(record)
                continue
            try:
                validate(record, Limits(recv_ns, self.max_future_skew_ns, self.known))
            except InvalidRecordError as exc:
                self.publisher.add_dead_letter(
                    exchange=self.name, reason=str(exc), frame=body, recv_ts=recv_ns, record=record
                )
            else:  # pragma: no cover - the fast and the explaining checks agree
                self.publisher.add(record)

    def _missed_batch(self, tick_ns: int, ids: Sequence[str], reason: str) -> None:
        symbols = tuple(self.symbols_by_id[mint] for mint in ids)
        self.ticks_missed += len(symbols)
        self.metrics.source_ticks.labels(self.name, "missed").inc(len(symbols))
        self.missed.append(MissedTick(tick_ns, symbols, reason))
        self.last_error = reason
        more = f" and {len(symbols) - 5} more" if len(symbols) > 5 else ""
        shown = ", ".join(symbols[:5]) + more
        log.warning("%s: tick %s missed for %s: %s", self.name, _utc(tick_ns), shown, reason)

    def _missed_all(self, tick_ns: int, reason: str) -> None:
        for ids in self.batches:
            self._missed_batch(tick_ns, ids, reason)

    # --- /healthz ------------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        quiet = time.monotonic() - self.last_met
        limit = max(3 * self.config.cadence_s, self.config.deadline + self.config.cadence_s)
        detail: dict[str, Any] = {
            "ticks_met": self.ticks_met,
            "ticks_missed": self.ticks_missed,
            "requests": self.requests,
            "hedges": self.hedges,
            "seconds_since_last_met": round(quiet, 1),
            "last_error": self.last_error,
            "recent_missed": [
                {"tick": _utc(m.tick_ns), "tokens": len(m.symbols), "reason": m.reason}
                for m in list(self.missed)[-5:]
            ],
            "done": self.done,
            "failure": self.failure,
        }
        return (quiet <= limit or self.done) and self.failure is None, detail


def health_of(pollers: Sequence[SourcePoller]) -> tuple[bool, Mapping[str, Any]]:
    states = {p.name: p.health() for p in pollers}
    return all(ok for ok, _ in states.values()), {name: d for name, (_, d) in states.items()}
