"""The quality report: per exchange and symbol, what the hot tier is missing in a range.

Figures, and where each comes from:
- minutes without a trade and completeness: `trades` sampled by minute in QuestDB (`SAMPLE
  BY 1m`, straight from the table, so a fresh backfill counts before the 1m view refreshes),
  see `gaps.minute_coverage`;
- missing trade ids: where ids go up by one per instrument (`gaps.SEQUENTIAL_ID_EXCHANGES`),
  QuestDB returns only the trades where the sequence breaks (`lag`/`lead` over time order),
  see `gaps.id_gaps`;
- book gaps and resyncs: the ingest processes' counters (`book_counters`);
- dead letters: `md:dlq` entries added in the range (`dead_letters`);
- freshness: exchange time to local receive (`recv_ts - ts`) of the range's trades, the
  worst and QuestDB's approximate 99th percentile;
- polled sources (`prices`): expected, stored and missed ticks per source and token, and the
  age of the prices when fetched, see `polled`.

Queries bind every value as a parameter, as `hot_queries` does; they run on its connection.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from psycopg import sql
from psycopg.types.numeric import Int8

from marketstream.quality.book_counters import BookCounters, BookCounts
from marketstream.quality.dead_letters import DeadLetterCounts, ExchangeDeadLetters
from marketstream.quality.gaps import (
    SEQUENTIAL_ID_EXCHANGES,
    SEQUENTIAL_ID_PATTERN,
    IdBreak,
    IdGaps,
    MinuteCoverage,
    id_gaps,
    minute_coverage,
)
from marketstream.quality.polled import PolledQuality, PolledQueries, PolledSymbol, collect_polled
from marketstream.query.hot_queries import (
    Param,
    QueryInputError,
    check_exchange,
    check_range,
    check_symbol,
    instrument_conditions,
)
from marketstream.schemas.columns import TRADES
from marketstream.schemas.instruments import SOURCES

# Breaks fetched per instrument at most: a sequential feed has a handful a day; more means
# the ids do not count up by one (the figure is then marked as cut short).
MAX_ID_BREAKS: Final = 100_000
P99_DIGITS: Final = 3  # approx_percentile precision: three significant digits
Instrument = tuple[str, str]

_TABLE: Final = sql.Identifier(TRADES.table)
_SUMMARY: Final = sql.SQL(
    "SELECT exchange, symbol, count(), cast(min(ts) AS LONG), cast(max(ts) AS LONG), "
    "max(cast(recv_ts AS LONG) - cast(ts AS LONG)), "
    # HdrHistogram takes no negative values: a receive clock behind the exchange's counts as 0
    "approx_percentile(greatest(cast(recv_ts AS LONG) - cast(ts AS LONG), 0), 0.99, {digits}) "
    "FROM {table} WHERE ts >= %s AND ts < %s{filters}"
)
_MINUTES: Final = sql.SQL(
    "SELECT exchange, symbol, cast(ts AS LONG) FROM ("
    "SELECT exchange, symbol, ts, count() FROM {table} WHERE ts >= %s AND ts < %s{filters} "
    "SAMPLE BY 1m ALIGN TO CALENDAR)"
)
_ID_BREAKS: Final = sql.SQL(
    "SELECT id, previous, following FROM ("
    "SELECT id, lag(id) OVER (ORDER BY ts) previous, lead(id) OVER (ORDER BY ts) following "
    "FROM (SELECT ts, cast(trade_id AS LONG) id FROM {table} "
    "WHERE exchange = %s AND symbol = %s AND ts >= %s AND ts < %s AND trade_id ~ {pattern})"
    ") WHERE previous IS NULL OR following IS NULL OR id != previous + 1 LIMIT %s"
).format(table=_TABLE, pattern=sql.Literal(SEQUENTIAL_ID_PATTERN))


@dataclass(frozen=True, slots=True)
class TradeSummary:
    """One instrument's trades in the range, as QuestDB aggregates them."""

    exchange: str
    symbol: str
    trades: int
    first_ns: int
    last_ns: int
    worst_freshness_ns: int  # max(recv_ts - ts)
    p99_freshness_ns: float  # approximate, negatives counted as 0


@dataclass(frozen=True, slots=True)
class IdFigure:
    """Trade-id gaps of one instrument; `cut_short` when more breaks than MAX_ID_BREAKS."""

    gaps: IdGaps | None
    cut_short: bool = False


class QualityQueries(PolledQueries):
    """The report's queries on the hot tier's PG-wire connection (see `HotQueries`)."""

    def trade_summaries(
        self, since_ns: int, until_ns: int, exchange: str | None = None, symbol: str | None = None
    ) -> list[TradeSummary]:
        filters, params = _filters(since_ns, until_ns, exchange, symbol)
        query = _SUMMARY.format(table=_TABLE, filters=filters, digits=sql.Literal(P99_DIGITS))
        return [
            TradeSummary(ex, sym, int(n), int(first), int(last), int(worst), float(p99))
            for ex, sym, n, first, last, worst, p99 in self._fetch(query, params)
        ]

    def minutes_with_trades(
        self, since_ns: int, until_ns: int, exchange: str | None = None, symbol: str | None = None
    ) -> dict[Instrument, list[int]]:
        """Per instrument, the opens (ns) of the UTC minutes holding a trade."""
        filters, params = _filters(since_ns, until_ns, exchange, symbol)
        minutes: dict[Instrument, list[int]] = {}
        for ex, sym, minute in self._fetch(_MINUTES.format(table=_TABLE, filters=filters), params):
            minutes.setdefault((ex, sym), []).append(int(minute))
        return minutes

    def id_breaks(
        self, exchange: str, symbol: str, since_ns: int, until_ns: int, limit: int = MAX_ID_BREAKS
    ) -> list[IdBreak]:
        """The trades where the id sequence breaks, for exchanges with sequential ids."""
        params: list[Param] = [
            check_exchange(exchange),
            check_symbol(symbol),
            Int8(since_ns),
            Int8(until_ns),
            Int8(limit + 1),
        ]
        return [
            IdBreak(int(i), None if p is None else int(p), None if f is None else int(f))
            for i, p, f in self._fetch(_ID_BREAKS, params)
        ]

    def id_figure(self, exchange: str, symbol: str, since_ns: int, until_ns: int) -> IdFigure:
        breaks = self.id_breaks(exchange, symbol, since_ns, until_ns)
        cut_short = len(breaks) > MAX_ID_BREAKS
        return IdFigure(id_gaps(breaks[:MAX_ID_BREAKS]), cut_short)


def _filters(
    since_ns: int, until_ns: int, exchange: str | None, symbol: str | None
) -> tuple[sql.Composable, list[Param]]:
    since_ns, until_ns = check_range(since_ns, until_ns)
    conditions, values = instrument_conditions(exchange, symbol)
    and_conditions = sql.Composed([sql.SQL(" AND ") + condition for condition in conditions])
    return and_conditions, [Int8(since_ns), Int8(until_ns), *values]


# --- the report: assembled from what was fetched (pure) -------------------------------------


@dataclass(frozen=True, slots=True)
class InstrumentQuality:
    exchange: str
    symbol: str
    trades: int
    first_trade_ns: int | None
    last_trade_ns: int | None
    minutes: MinuteCoverage
    ids: IdFigure | None  # None: this exchange's ids are not sequential
    book: BookCounts | None  # None: no ingest process answered
    dead_letters: int  # md:dlq entries whose record names this instrument
    worst_freshness_ns: int | None
    p99_freshness_ns: float | None
    passed: bool

    @property
    def completeness(self) -> float | None:
        return self.minutes.completeness


@dataclass(frozen=True, slots=True)
class QualityReport:
    since_ns: int
    until_ns: int
    min_completeness: float
    instruments: tuple[InstrumentQuality, ...]
    dead_letters: dict[str, ExchangeDeadLetters] | None  # None: Redis not read
    book_sources: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    polled: tuple[PolledQuality, ...] = field(default=())  # one row per source and token
    from_first_tick: bool = False  # polled ticks counted from each source's first stored one

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.instruments) and all(p.passed for p in self.polled)

    @property
    def failing_polled(self) -> list[PolledQuality]:
        return [p for p in self.polled if not p.passed]

    @property
    def failing(self) -> list[InstrumentQuality]:
        return [i for i in self.instruments if not i.passed]


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """What a report weighs the hot tier's figures against: the pass mark, the configured
    instruments (`expected`, reported even without a trade), and the dead letters, book
    counters and notes read elsewhere.

    `polled` are the configured tokens of the enabled polled sources; their ticks are due
    once their deadline and `tick_grace_ns` have passed by `now_ns` (None: every tick in the
    range is due), counted from each source's first stored tick with `from_first_tick`."""

    min_completeness: float
    expected: Collection[Instrument] = ()
    dead_letters: DeadLetterCounts | None = None
    books: BookCounters | None = None
    notes: Iterable[str] = ()
    polled: Collection[PolledSymbol] = ()
    now_ns: int | None = None
    tick_grace_ns: int = 0
    from_first_tick: bool = False


def assemble(
    since_ns: int,
    until_ns: int,
    inputs: ReportInputs,
    *,
    summaries: Iterable[TradeSummary],
    minutes: Mapping[Instrument, Iterable[int]],
    ids: Mapping[Instrument, IdFigure],
    polled: Iterable[PolledQuality] = (),
) -> QualityReport:
    """One row per instrument that traded in the range or is `expected` (configured)."""
    dead_letters, books = inputs.dead_letters, inputs.books
    by_instrument = {(s.exchange, s.symbol): s for s in summaries}
    rows: list[InstrumentQuality] = []
    for key in sorted(set(by_instrument) | set(inputs.expected)):
        summary = by_instrument.get(key)
        coverage = minute_coverage(
            minutes.get(key, ()),
            since_ns,
            until_ns,
            first_trade_ns=None if summary is None else summary.first_ns,
        )
        completeness = coverage.completeness
        id_figure = ids.get(key)
        if id_figure is None and key[0] in SEQUENTIAL_ID_EXCHANGES:
            id_figure = IdFigure(None)
        rows.append(
            InstrumentQuality(
                exchange=key[0],
                symbol=key[1],
                trades=0 if summary is None else summary.trades,
                first_trade_ns=None if summary is None else summary.first_ns,
                last_trade_ns=None if summary is None else summary.last_ns,
                minutes=coverage,
                ids=id_figure,
                book=None if books is None else books.of(*key),
                dead_letters=0 if dead_letters is None else dead_letters.instruments.get(key, 0),
                worst_freshness_ns=None if summary is None else summary.worst_freshness_ns,
                p99_freshness_ns=None if summary is None else summary.p99_freshness_ns,
                passed=completeness is None or completeness >= inputs.min_completeness,
            )
        )
    return QualityReport(
        since_ns=since_ns,
        until_ns=until_ns,
        min_completeness=inputs.min_completeness,
        instruments=tuple(rows),
        dead_letters=None if dead_letters is None else dict(sorted(dead_letters.exchanges.items())),
        book_sources=tuple(() if books is None else books.sources),
        notes=(*inputs.notes, *(() if books is None else books.notes)),
        polled=tuple(polled),
        from_first_tick=inputs.from_first_tick,
    )


def check_min_completeness(value: float | str) -> float:
    """A share from 0 to 1 (`0.99`), or a percentage (`99%`)."""
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        share = float("nan")
    if not 0 <= share <= 1:
        raise QueryInputError(
            f"--min-completeness {text!r} is not a share: expected a number from 0 to 1 "
            "(0.99) or a percentage (99%)"
        )
    return share


def collect(
    hot: QualityQueries,
    since_ns: int,
    until_ns: int,
    inputs: ReportInputs,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
) -> QualityReport:
    """Ask the hot tier for the range's figures (of one exchange or symbol, where given) and
    assemble the report; `inputs.expected` and `inputs.polled` are cut to the same exchange
    (or source) and symbol. A source's name as `exchange` asks for its prices only."""
    summaries: list[TradeSummary] = []
    minutes: dict[Instrument, list[int]] = {}
    if exchange not in SOURCES:
        summaries = hot.trade_summaries(since_ns, until_ns, exchange, symbol)
        minutes = hot.minutes_with_trades(since_ns, until_ns, exchange, symbol)
    ids = {
        (s.exchange, s.symbol): hot.id_figure(s.exchange, s.symbol, since_ns, until_ns)
        for s in summaries
        if s.exchange in SEQUENTIAL_ID_EXCHANGES
    }
    polled: list[PolledQuality] = []
    if exchange is None or exchange in SOURCES:
        polled = collect_polled(
            hot,
            inputs.polled,
            since_ns,
            until_ns,
            now_ns=inputs.now_ns,
            grace_ns=inputs.tick_grace_ns,
            from_first_tick=inputs.from_first_tick,
            source=exchange,
            symbol=symbol,
        )
    wanted = [
        (ex, sym)
        for ex, sym in inputs.expected
        if (exchange is None or ex == exchange) and (symbol is None or sym == symbol)
    ]
    return assemble(
        since_ns,
        until_ns,
        replace(inputs, expected=wanted),
        summaries=summaries,
        minutes=minutes,
        ids=ids,
        polled=polled,
    )
