"""Completeness of the polled price sources (`prices`): per source and token, the ticks the
range expects, those stored, the runs of missed ticks, duplicates, and the age of the prices
when they were fetched.

Every figure is aggregated by QuestDB, so a day of 15 tokens at 1 s (1.3M rows) comes back
as a handful of rows per token:
- expected: the ticks `k * cadence` in the range (see `ticks.tick_span`), up to the last one
  whose deadline (`sources.<name>.deadline_s`) and `quality.tick_grace_s` have passed;
- present, duplicates: `count_distinct(ts)` and `count() - count_distinct(ts)` of the rows
  on the tick grid; rows off the grid (a `ts` that is no tick) are counted apart;
- missed ranges: first and last stored tick per token, and the pairs of consecutive stored
  ticks more than a cadence apart (`lag` in time order, only asked for when a token has
  holes between its first and last tick), at most MAX_MISSED_RANGES per token;
- age: `recv_ts - source_ts` where the source dates its price (Birdeye); where it does not
  (Jupiter) `recv_ts` minus the `recv_ts` of the token's first row in the range with the same
  `block`, i.e. how long the source had been answering the same block (a lower bound of the
  price's age). QuestDB's `approx_percentile` (3 significant digits) gives p50 and p99.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from psycopg import sql
from psycopg.types.numeric import Int8

from marketstream.quality.ticks import (
    NS_PER_S,
    TickRange,
    TickSpan,
    cadence_ns,
    missed_ranges,
    tick_span,
)
from marketstream.query.hot_queries import HotQueries, Param, check_range
from marketstream.schemas.columns import PRICES
from marketstream.sources.registry import get_source

if TYPE_CHECKING:
    from marketstream.config import PipelineConfig

MAX_MISSED_RANGES: Final = 1_000  # runs of missed ticks fetched per token at most
P_DIGITS: Final = 3  # approx_percentile precision: three significant digits

Measure = Literal["source_ts", "block"]

_TABLE: Final = sql.Identifier(PRICES.table)
_ON_GRID: Final = sql.SQL("cast(ts AS LONG) %% %s = 0")
_COUNTS: Final = sql.SQL(
    "SELECT symbol, count(), count_distinct(cast(ts AS LONG)), cast(min(ts) AS LONG), "
    "cast(max(ts) AS LONG) FROM {table} "
    "WHERE exchange = %s AND ts >= %s AND ts < %s AND {on_grid}{symbol}"
)
_OFF_GRID: Final = sql.SQL(
    "SELECT symbol, count() FROM {table} "
    "WHERE exchange = %s AND ts >= %s AND ts < %s AND NOT {on_grid}{symbol}"
)
_HOLES: Final = sql.SQL(
    "SELECT previous, t FROM ("
    "SELECT cast(ts AS LONG) t, lag(cast(ts AS LONG)) OVER (ORDER BY ts) previous "
    "FROM {table} WHERE exchange = %s AND symbol = %s AND ts >= %s AND ts < %s AND {on_grid}"
    ") WHERE previous IS NOT NULL AND t - previous > %s LIMIT %s"
)
_HOLE_COUNT: Final = sql.SQL(
    "SELECT count() FROM ("
    "SELECT cast(ts AS LONG) t, lag(cast(ts AS LONG)) OVER (ORDER BY ts) previous "
    "FROM {table} WHERE exchange = %s AND symbol = %s AND ts >= %s AND ts < %s AND {on_grid}"
    ") WHERE previous IS NOT NULL AND t - previous > %s"
)
# Ages in ns; HdrHistogram takes no negative value, so a receive clock behind the source's
# counts as 0 in the percentiles (the max is the raw figure).
_SOURCE_AGES: Final = sql.SQL(
    "SELECT symbol, count(), approx_percentile(greatest(age, 0), 0.5, {digits}), "
    "approx_percentile(greatest(age, 0), 0.99, {digits}), max(age) FROM ("
    "SELECT symbol, cast(recv_ts AS LONG) - cast(source_ts AS LONG) age FROM {table} "
    "WHERE exchange = %s AND ts >= %s AND ts < %s AND source_ts IS NOT NULL{symbol})"
)
_BLOCK_AGES: Final = sql.SQL(
    "SELECT symbol, count(), approx_percentile(age, 0.5, {digits}), "
    "approx_percentile(age, 0.99, {digits}), max(age) FROM ("
    "SELECT symbol, greatest(cast(recv_ts AS LONG) - first_value(cast(recv_ts AS LONG)) "
    "OVER (PARTITION BY symbol, block ORDER BY ts), 0) age FROM {table} "
    "WHERE exchange = %s AND ts >= %s AND ts < %s AND source_ts IS NULL "
    "AND block IS NOT NULL{symbol})"
)


@dataclass(frozen=True, slots=True)
class PolledSymbol:
    """One configured token of an enabled source, as the report expects it."""

    source: str
    symbol: str  # `<SYMBOL>-USD`
    cadence_ns: int
    deadline_ns: int  # a tick is due this long after it (sources.<name>.deadline_s)


def polled_symbols(config: PipelineConfig) -> list[PolledSymbol]:
    """Every token of every enabled source (`PipelineConfig.enabled_sources()`), under the
    symbol the poller stores it as: `<SYMBOL>-<the source's quote>`."""
    return [
        PolledSymbol(
            name,
            f"{token}-{get_source(name).quote}",
            cadence_ns(source.cadence_s),
            round(source.deadline * NS_PER_S),
        )
        for name, source in sorted(config.enabled_sources().items())
        for token in source.symbols
    ]


@dataclass(frozen=True, slots=True)
class TickCounts:
    """One token's rows on the tick grid in a span, as QuestDB aggregates them."""

    symbol: str
    rows: int
    distinct: int
    first_ns: int
    last_ns: int


@dataclass(frozen=True, slots=True)
class AgeFigure:
    """How old the prices were when fetched; `measure` says which measure (module doc)."""

    measure: Measure
    samples: int
    p50_ns: float  # approximate
    p99_ns: float  # approximate
    max_ns: int


@dataclass(frozen=True, slots=True)
class Holes:
    """Pairs of consecutive stored ticks more than a cadence apart; `total` counts them all
    when more than were fetched."""

    pairs: tuple[tuple[int, int], ...]
    total: int


class PolledQueries(HotQueries):
    """The polled-source queries on the hot tier's PG-wire connection."""

    def tick_counts(
        self, source: str, span: TickSpan, symbol: str | None = None
    ) -> dict[str, TickCounts]:
        params = [*_span_params(source, span), Int8(span.cadence_ns)]
        query = _compose(_COUNTS, _symbol_filter(symbol, params))
        return {
            str(sym): TickCounts(str(sym), int(n), int(distinct), int(first), int(last))
            for sym, n, distinct, first, last in self._fetch(query, params)
        }

    def off_grid(self, source: str, span: TickSpan, symbol: str | None = None) -> dict[str, int]:
        params = [*_span_params(source, span), Int8(span.cadence_ns)]
        query = _compose(_OFF_GRID, _symbol_filter(symbol, params))
        return {str(sym): int(n) for sym, n in self._fetch(query, params)}

    def holes(
        self, source: str, symbol: str, span: TickSpan, limit: int = MAX_MISSED_RANGES
    ) -> Holes:
        """Up to `limit` holes of one token, and how many there are in all."""
        source_param, *bounds = _span_params(source, span)
        params: list[Param] = [source_param, symbol, *bounds, Int8(span.cadence_ns)]
        step = Int8(span.cadence_ns)
        rows = self._fetch(_compose(_HOLES), [*params, step, Int8(limit + 1)])
        pairs = tuple((int(previous), int(following)) for previous, following in rows)
        if len(pairs) <= limit:
            return Holes(pairs, len(pairs))
        ((total,),) = self._fetch(_compose(_HOLE_COUNT), [*params, step])
        return Holes(pairs[:limit], int(total))

    def ages(
        self, source: str, span: TickSpan, measure: Measure, symbol: str | None = None
    ) -> dict[str, AgeFigure]:
        params = _span_params(source, span)
        template = _SOURCE_AGES if measure == "source_ts" else _BLOCK_AGES
        query = _compose(template, _symbol_filter(symbol, params))
        return {
            str(sym): AgeFigure(measure, int(n), float(p50), float(p99), int(worst))
            for sym, n, p50, p99, worst in self._fetch(query, params)
        }


def _compose(template: sql.SQL, symbol: sql.Composable | None = None) -> sql.Composed:
    return template.format(
        table=_TABLE,
        on_grid=_ON_GRID,
        digits=sql.Literal(P_DIGITS),
        symbol=sql.SQL("") if symbol is None else symbol,
    )


def _span_params(source: str, span: TickSpan) -> list[Param]:
    start, end = check_range(span.start_ns, span.end_ns)
    return [source, Int8(start), Int8(end)]


def _symbol_filter(symbol: str | None, params: list[Param]) -> sql.Composable:
    if symbol is None:
        return sql.SQL("")
    params.append(symbol)
    return sql.SQL(" AND symbol = %s")


# --- one row per token: assembled from what was fetched (pure) ------------------------------


@dataclass(frozen=True, slots=True)
class PolledQuality:
    """One token of one source over the report's range."""

    source: str
    symbol: str
    cadence_ns: int
    span: TickSpan  # the expected ticks: span.start_ns, + cadence, ... < span.end_ns
    present: int  # distinct ticks stored
    duplicates: int  # rows beyond one per tick (QuestDB's dedup keys make this 0)
    off_grid: int  # rows whose ts is no tick of the cadence (not counted as present)
    missed_ranges: tuple[TickRange, ...]  # in time order, at most MAX_MISSED_RANGES + 2
    missed_range_count: int  # all runs of missed ticks, listed or not
    age: AgeFigure | None  # None: no row dated by the source nor carrying a block

    @property
    def expected(self) -> int:
        return self.span.expected

    @property
    def missed(self) -> int:
        return self.expected - self.present

    @property
    def passed(self) -> bool:
        return self.missed == 0 and self.duplicates == 0


def assemble_polled(
    spec: PolledSymbol,
    span: TickSpan,
    counts: TickCounts | None,
    *,
    off_grid: int = 0,
    holes: Holes | None = None,
    age: AgeFigure | None = None,
) -> PolledQuality:
    """One token's row; `holes` None means none between its first and last stored tick."""
    holes = holes or Holes((), 0)
    ranges = missed_ranges(
        span,
        None if counts is None else counts.first_ns,
        None if counts is None else counts.last_ns,
        holes.pairs,
    )
    unlisted = holes.total - len(holes.pairs)
    return PolledQuality(
        source=spec.source,
        symbol=spec.symbol,
        cadence_ns=span.cadence_ns,
        span=span,
        present=0 if counts is None else counts.distinct,
        duplicates=0 if counts is None else counts.rows - counts.distinct,
        off_grid=off_grid,
        missed_ranges=tuple(ranges),
        missed_range_count=len(ranges) + unlisted,
        age=age,
    )


def interior_missed(span: TickSpan, counts: TickCounts) -> int:
    """Ticks missing between a token's first and last stored tick: the holes to ask for."""
    between = (counts.last_ns - counts.first_ns) // span.cadence_ns + 1
    return between - counts.distinct


def collect_polled(
    hot: PolledQueries,
    specs: Collection[PolledSymbol],
    since_ns: int,
    until_ns: int,
    *,
    now_ns: int | None = None,
    grace_ns: int = 0,
    from_first_tick: bool = False,
    source: str | None = None,
    symbol: str | None = None,
) -> list[PolledQuality]:
    """One row per configured token (of `source` and `symbol`, where given), in config order.

    The expected ticks are those in [since, until) that are due by `now_ns` (their deadline
    and `grace_ns` past; None: all of them). With `from_first_tick`, a source's ticks count
    from its first stored tick in the range (a poller started mid-range is not blamed for the
    time before it ran); a source with no row at all counts from the range start either way.
    """
    wanted = [
        s
        for s in specs
        if (source is None or s.source == source) and (symbol is None or s.symbol == symbol)
    ]
    rows: list[PolledQuality] = []
    for (name, cadence, deadline), group in _by_source(wanted).items():
        settled = None if now_ns is None else now_ns - deadline - grace_ns
        span = tick_span(since_ns, until_ns, cadence, settled)
        if span.expected == 0:
            rows.extend(assemble_polled(spec, span, None) for spec in group)
            continue
        counts = hot.tick_counts(name, span, symbol)
        if from_first_tick and counts:
            span = span.starting_at(min(c.first_ns for c in counts.values()))
        off_grid = hot.off_grid(name, span, symbol)
        ages = _ages(hot, name, span, counts, symbol)
        for spec in group:
            found = counts.get(spec.symbol)
            holes = None
            if found is not None and interior_missed(span, found) > 0:
                holes = hot.holes(name, spec.symbol, span)
            rows.append(
                assemble_polled(
                    spec,
                    span,
                    found,
                    off_grid=off_grid.get(spec.symbol, 0),
                    holes=holes,
                    age=ages.get(spec.symbol),
                )
            )
    return rows


def polled_completeness(
    hot: PolledQueries,
    config: PipelineConfig,
    since_ns: int,
    until_ns: int,
    *,
    now_ns: int | None = None,
    from_first_tick: bool = False,
    source: str | None = None,
    symbol: str | None = None,
) -> list[PolledQuality]:
    """The report's polled rows for the configured tokens (see `collect_polled`), with
    `quality.tick_grace_s` as the grace: for a caller that wants this section alone."""
    return collect_polled(
        hot,
        polled_symbols(config),
        since_ns,
        until_ns,
        now_ns=now_ns,
        grace_ns=tick_grace_ns(config),
        from_first_tick=from_first_tick,
        source=source,
        symbol=symbol,
    )


def tick_grace_ns(config: PipelineConfig) -> int:
    return round(config.quality.tick_grace_s * NS_PER_S)


def _by_source(
    specs: Iterable[PolledSymbol],
) -> dict[tuple[str, int, int], list[PolledSymbol]]:
    groups: dict[tuple[str, int, int], list[PolledSymbol]] = {}
    for spec in specs:
        groups.setdefault((spec.source, spec.cadence_ns, spec.deadline_ns), []).append(spec)
    return groups


def _ages(
    hot: PolledQueries,
    source: str,
    span: TickSpan,
    counts: Mapping[str, TickCounts],
    symbol: str | None,
) -> dict[str, AgeFigure]:
    """The source's own dates where it gives them, the block proxy for tokens without."""
    ages = hot.ages(source, span, "source_ts", symbol)
    if any(sym not in ages for sym in counts):
        blocks = hot.ages(source, span, "block", symbol)
        ages |= {sym: figure for sym, figure in blocks.items() if sym not in ages}
    return ages
