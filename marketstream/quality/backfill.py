"""Refill what the hot tier is missing from the exchange's REST API.

The plan comes from the same figures as the report. Where trade ids are sequential, the
missing ids are fetched by id; that covers every hole between two stored trades. Time is
fetched where ids cannot tell: before the first stored trade of the range (when a whole
minute lies before it), after the last one (when minutes there have no trade), and the whole
range when nothing is stored. Trades go through the record checks, then into QuestDB with
the hot writer's row writer over ILP/HTTP; the tables' dedup keys make a trade that is
already there a no-op, so a plan that overlaps stored trades costs requests, never doubles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from questdb import QuestDBError, Sender

from marketstream.errors import MarketStreamError, ServiceError
from marketstream.quality.gaps import MINUTE_NS
from marketstream.quality.report import InstrumentQuality
from marketstream.query.hot_queries import format_ns
from marketstream.schemas.records import Trade
from marketstream.schemas.validation import InvalidRecordError, Limits, validate
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_rows import write_rows
from marketstream.tiers.questdb_tables import create_all_sql
from marketstream.venues.base.venue import TradePages, Venue
from marketstream.venues.registry import backfill_venue
from marketstream.writers.hot_writer_questdb import ILP_PROTOCOL_VERSION

MAX_RANGE_NS: Final = 86_400 * 1_000_000_000  # one day per run
SHOWN_REJECTIONS: Final = 5
WAL_WAIT_S: Final = 60.0
_WAL_TXN: Final = {
    column: f"SELECT {column} FROM wal_tables() WHERE name = 'trades'"  # noqa: S608 - ours
    for column in ("writerTxn", "sequencerTxn")
}


def check_backfill_exchange(exchange: str) -> Venue:
    """The venue, if it serves past trades (`Venue.trade_history`); else MarketStreamError."""
    return backfill_venue(exchange)


def check_backfill_range(since_ns: int, until_ns: int, now_ns: int, hot_days: int) -> None:
    """At most a day per run, and only days the hot tier still holds (older ones belong to
    the archiver: a day already moved down would end up split across tiers)."""
    if until_ns - since_ns > MAX_RANGE_NS:
        raise MarketStreamError(
            f"--since {format_ns(since_ns)} is more than a day before --until "
            f"{format_ns(until_ns)}: backfill covers at most one day per run"
        )
    horizon = now_ns - hot_days * MAX_RANGE_NS
    if since_ns < horizon:
        raise MarketStreamError(
            f"--since {format_ns(since_ns)} is older than the hot tier's horizon "
            f"({hot_days} days, horizons.hot_days): expected a time after {format_ns(horizon)}"
        )


@dataclass(frozen=True, slots=True)
class FetchTask:
    """One piece of the plan: ids low..high, or times [low, high); trades with an id below
    `min_id` are left out (they are stored already: a rewrite would replace their recv_ts)."""

    kind: Literal["ids", "time"]
    low: int
    high: int
    why: str
    min_id: int | None = None

    def describe(self) -> str:
        if self.kind == "ids" and self.low == self.high:
            return f"trade id {self.low} ({self.why})"
        if self.kind == "ids":
            return f"trade ids {self.low}-{self.high} ({self.why})"
        after = "" if self.min_id is None else f", ids from {self.min_id}"
        return f"trades {format_ns(self.low)} to {format_ns(self.high)} ({self.why}{after})"


def plan_backfill(
    row: InstrumentQuality, since_ns: int, until_ns: int, *, sequential_ids: bool
) -> list[FetchTask]:
    """What to fetch for one instrument so that its gaps in [since, until) are refilled.

    Only what is not stored is asked for: the dedup keys would make a stored trade a no-op
    in content, but its row would take the backfill's receive time.
    """
    first, last = row.first_trade_ns, row.last_trade_ns
    if first is None or last is None:
        return [FetchTask("time", since_ns, until_ns, "no trade stored in the range")]
    tasks: list[FetchTask] = []
    if first - since_ns >= MINUTE_NS:
        tasks.append(FetchTask("time", since_ns, first, "before the first stored trade"))
    gaps = None if row.ids is None or not sequential_ids else row.ids.gaps
    if gaps is not None:
        tasks.extend(FetchTask("ids", r.first, r.last, "missing ids") for r in gaps.missing)
    else:  # no ids to go by: every minute without a trade between stored ones
        tasks.extend(
            FetchTask("time", i.start_ns, i.end_ns, "minutes without a trade")
            for i in row.minutes.missing
            if i.end_ns <= last
        )
    if any(i.start_ns > last for i in row.minutes.missing):
        why = "no trade after the last stored one"
        if gaps is not None:  # from the last stored time, newer ids only
            tasks.append(FetchTask("time", last, until_ns, why, min_id=gaps.highest + 1))
        else:
            tasks.append(FetchTask("time", last + 1, until_ns, why))
    return tasks


class TradeSink(Protocol):
    def write(self, trades: list[Trade]) -> int: ...


@dataclass(slots=True)
class BackfillResult:
    tasks: list[FetchTask]
    fetched: int = 0
    stored: int = 0  # fetched but stored already (left out)
    written: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)  # the first few reasons
    usage: dict[str, float] = field(default_factory=dict)  # requests, weight, retries, waited_s


def run_backfill(
    tasks: Iterable[FetchTask],
    source: TradePages,
    sink: TradeSink,
    *,
    max_future_skew_ns: int,
) -> BackfillResult:
    """Fetch every task's pages, check each trade and write the good ones page by page."""
    result = BackfillResult(tasks=list(tasks))
    for task in result.tasks:
        pages = (
            source.by_ids(task.low, task.high)
            if task.kind == "ids"
            else source.by_time(task.low, task.high)
        )
        for page in pages:
            result.fetched += len(page)
            good: list[Trade] = []
            for trade in page:
                if task.min_id is not None and int(trade.trade_id) < task.min_id:
                    result.stored += 1
                    continue
                try:
                    validate(trade, Limits(trade.recv_ts, max_future_skew_ns))
                except InvalidRecordError as exc:
                    result.rejected += 1
                    if len(result.rejections) < SHOWN_REJECTIONS:
                        result.rejections.append(f"trade {trade.trade_id}: {exc}")
                    continue
                good.append(trade)
            if good:
                result.written += sink.write(good)
    return result


class QuestDBTradeSink:
    """Trades into QuestDB with the hot writer's row writer over ILP/HTTP, one flush a page.

    The tables are created first (idempotent), as the hot writer does: ILP alone would
    create a table without the dedup keys that make a rewrite a no-op.
    """

    def __init__(self, http: QuestDBHttp) -> None:
        for statement in create_all_sql():
            http.exec(statement)
        self._http = http
        self._sender = Sender.from_conf(
            http.sender_conf(), auto_flush=False, protocol_version=ILP_PROTOCOL_VERSION
        )
        self._sender.establish()  # type: ignore[no-untyped-call]  # the stub lacks -> None

    def write(self, trades: list[Trade]) -> int:
        try:
            count = write_rows(self._sender, trades)
            self._sender.flush()
        except QuestDBError as exc:
            raise ServiceError(
                f"QuestDB at {self._http.base_url} refused the trades: {exc}"
            ) from None
        return count

    def close(self) -> None:
        self._sender.close()

    def wait_applied(
        self, timeout_s: float = WAL_WAIT_S, sleep: Callable[[float], None] = time.sleep
    ) -> bool:
        """Until the trades written so far are queryable (WAL applied); False on timeout."""
        deadline = time.monotonic() + timeout_s
        target = self._trades_txn("sequencerTxn")
        while self._trades_txn("writerTxn") < target:
            if time.monotonic() > deadline:
                return False
            sleep(0.05)
        return True

    def _trades_txn(self, column: Literal["writerTxn", "sequencerTxn"]) -> int:
        answer = self._http.exec(_WAL_TXN[column])
        rows = answer.get("dataset") or [[0]]
        return int(rows[0][0])
