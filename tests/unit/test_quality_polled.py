"""The pure parts of the polled sources' completeness: tick arithmetic, runs of missed ticks,
one token's row, its rendering, and the tokens a configuration expects."""

from __future__ import annotations

import itertools
from dataclasses import replace
from types import MappingProxyType

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketstream.config import load_config
from marketstream.quality.polled import (
    AgeFigure,
    Holes,
    PolledSymbol,
    TickCounts,
    assemble_polled,
    interior_missed,
    polled_symbols,
)
from marketstream.quality.render import report_dict, report_lines, tick_range_text
from marketstream.quality.report import QualityReport, ReportInputs, assemble
from marketstream.quality.ticks import (
    TickRange,
    TickSpan,
    cadence_ns,
    missed_ranges,
    tick_ceil,
    tick_span,
)
from marketstream.sources import registry
from tests.integration.endpoints import CONFIG_FILE

S = 10**9
MS = 10**6
D = 1_330_560_000 * S  # 2012-03-01T00:00:00Z
SPEC = PolledSymbol("jupiter", "SOL-USD", S, 2 * S)


# --- ticks ----------------------------------------------------------------------------------------


def test_cadence_in_whole_nanoseconds() -> None:
    assert cadence_ns(1) == S
    assert cadence_ns(0.25) == 250 * MS
    assert cadence_ns(0.1) == 100 * MS  # not 100000000.00000001
    with pytest.raises(ValueError, match="not a positive number"):
        cadence_ns(1e-12)


def test_tick_ceil_keeps_ticks_and_rounds_up_the_rest() -> None:
    assert tick_ceil(D, 2 * S) == D
    assert tick_ceil(D + 1, 2 * S) == D + 2 * S
    assert tick_ceil(D - 1, 2 * S) == D


def test_a_span_holds_the_ticks_in_the_half_open_range() -> None:
    assert tick_span(D, D + 10 * S, S) == TickSpan(D, D + 10 * S, S)
    assert tick_span(D, D + 10 * S, S).expected == 10  # D .. D+9s; D+10s is `until`
    assert tick_span(D + 1, D + 10 * S + 1, S).expected == 10  # D+1s .. D+10s
    assert tick_span(D + 500 * MS, D + 900 * MS, S).expected == 0  # no tick inside
    assert tick_span(D, D + 10 * S, 3 * S).expected == 4  # D, +3, +6, +9


def test_ticks_not_yet_due_are_not_expected() -> None:
    span = tick_span(D, D + 60 * S, S, settled_ns=D + 20 * S)
    assert (span.expected, span.end_ns) == (21, D + 21 * S)  # the tick at +20 s is due
    assert tick_span(D, D + 60 * S, S, settled_ns=D - 1).expected == 0
    assert tick_span(D, D + 10 * S, S, settled_ns=D + 99 * S).expected == 10  # until bounds


def test_a_span_from_a_later_first_tick() -> None:
    span = TickSpan(D, D + 10 * S, S)
    assert span.starting_at(D + 4 * S) == TickSpan(D + 4 * S, D + 10 * S, S)
    assert span.starting_at(D - 5 * S) == span  # never before the range
    assert span.starting_at(D + 20 * S).expected == 0


def test_missed_ranges_before_between_and_after_the_stored_ticks() -> None:
    span = TickSpan(D, D + 20 * S, S)
    ranges = missed_ranges(
        span, D + 2 * S, D + 14 * S, [(D + 9 * S, D + 13 * S), (D + 5 * S, D + 7 * S)]
    )
    assert [(r.first_ns - D, r.last_ns - D, r.ticks) for r in ranges] == [
        (0, S, 2),
        (6 * S, 6 * S, 1),
        (10 * S, 12 * S, 3),
        (15 * S, 19 * S, 5),
    ]
    assert missed_ranges(span, None, None, []) == [TickRange(D, D + 19 * S, S)]
    assert missed_ranges(span, D, D + 19 * S, []) == []
    assert missed_ranges(TickSpan(D, D, S), None, None, []) == []


@given(
    present=st.sets(st.integers(0, 59)),
    cadence=st.sampled_from([S, 2 * S, 250 * MS]),
)
def test_missed_ranges_cover_exactly_the_ticks_without_a_row(
    present: set[int], cadence: int
) -> None:
    span = TickSpan(D, D + 60 * cadence, cadence)
    ticks = sorted(D + k * cadence for k in present)
    holes = [(a, b) for a, b in itertools.pairwise(ticks) if b - a > cadence]
    ranges = missed_ranges(span, ticks[0] if ticks else None, ticks[-1] if ticks else None, holes)
    missed = [t for r in ranges for t in range(r.first_ns, r.last_ns + 1, cadence)]
    assert missed == [D + k * cadence for k in range(60) if k not in present]
    assert all(a.last_ns + cadence < b.first_ns for a, b in itertools.pairwise(ranges))


# --- one token's row --------------------------------------------------------------------------


def test_a_complete_token_passes() -> None:
    span = TickSpan(D, D + 60 * S, S)
    row = assemble_polled(SPEC, span, TickCounts("SOL-USD", 60, 60, D, D + 59 * S))
    assert (row.expected, row.present, row.missed, row.duplicates) == (60, 60, 0, 0)
    assert row.missed_ranges == ()
    assert row.passed


def test_missed_ticks_and_duplicates_fail_a_token() -> None:
    span = TickSpan(D, D + 60 * S, S)
    counts = TickCounts("SOL-USD", 57, 57, D, D + 59 * S)
    assert interior_missed(span, counts) == 3
    holed = assemble_polled(SPEC, span, counts, holes=Holes(((D + 9 * S, D + 13 * S),), 1))
    assert (holed.missed, holed.missed_range_count, holed.passed) == (3, 1, False)
    doubled = assemble_polled(SPEC, span, TickCounts("SOL-USD", 61, 60, D, D + 59 * S))
    assert (doubled.missed, doubled.duplicates, doubled.passed) == (0, 1, False)
    silent = assemble_polled(SPEC, span, None)
    assert (silent.present, silent.missed, silent.missed_range_count) == (0, 60, 1)


def test_ranges_beyond_those_fetched_are_counted() -> None:
    span = TickSpan(D, D + 60 * S, S)
    counts = TickCounts("SOL-USD", 40, 40, D + S, D + 59 * S)  # tick 0 missed too
    holes = Holes(((D + 2 * S, D + 4 * S), (D + 5 * S, D + 7 * S)), total=19)
    row = assemble_polled(SPEC, span, counts, holes=holes)
    assert len(row.missed_ranges) == 3  # the leading one and the two fetched
    assert row.missed_range_count == 1 + 19


# --- rendering ------------------------------------------------------------------------------------


def polled_report() -> QualityReport:
    span = TickSpan(D, D + 60 * S, S)
    rows = [
        assemble_polled(
            SPEC,
            span,
            TickCounts("SOL-USD", 60, 60, D, D + 59 * S),
            age=AgeFigure("block", 60, 1_000_000_000.0, 3_000_000_000.0, 3_000_000_000),
        ),
        assemble_polled(
            PolledSymbol("jupiter", "JUP-USD", S, 2 * S),
            span,
            TickCounts("JUP-USD", 56, 56, D, D + 57 * S),
            holes=Holes(((D + 9 * S, D + 12 * S),), 1),
            off_grid=2,
        ),
    ]
    return assemble(
        D, D + 60 * S, ReportInputs(0.99), summaries=[], minutes={}, ids={}, polled=rows
    )


def test_polled_rows_as_json() -> None:
    report = polled_report()
    assert not report.passed
    body = report_dict(report)
    assert orjson.loads(orjson.dumps(body)) == body
    sol, jup = body["polled"]
    assert sol == {
        "source": "jupiter", "symbol": "SOL-USD", "cadence_s": 1.0,
        "first_tick": "2012-03-01T00:00:00.000000000Z", "end": "2012-03-01T00:01:00.000000000Z",
        "expected": 60, "present": 60, "missed": 0, "duplicates": 0, "off_grid": 0,
        "missed_ranges": [], "missed_range_count": 0,
        "age": {"measure": "block", "samples": 60, "p50_ms": 1000.0, "p99_ms": 3000.0,
                "max_ms": 3000.0},
        "passed": True,
    }  # fmt: skip
    assert jup["missed_ranges"] == [
        {"first": "2012-03-01T00:00:10.000000000Z", "last": "2012-03-01T00:00:11.000000000Z",
         "ticks": 2},
        {"first": "2012-03-01T00:00:58.000000000Z", "last": "2012-03-01T00:00:59.000000000Z",
         "ticks": 2},
    ]  # fmt: skip
    assert (jup["missed"], jup["off_grid"], jup["age"], jup["passed"]) == (4, 2, None, False)
    assert body["polled_from_first_tick"] is False


def test_polled_rows_as_a_table() -> None:
    lines = report_lines(polled_report())
    header, sol, jup = lines[:3]
    assert header.split() == [
        "source", "symbol", "cadence", "expected", "present", "missed", "dups", "ranges",
        "age_p50_ms", "age_p99_ms", "age_max_ms", "age_by", "status",
    ]  # fmt: skip
    assert sol.split() == [
        "jupiter", "SOL-USD", "1s", "60", "60", "0", "0", "0", "1000.0", "3000.0", "3000.0",
        "block", "ok",
    ]  # fmt: skip
    assert jup.split()[3:8] == ["60", "56", "4", "0", "2"]
    assert jup.split()[-2:] == ["-", "FAIL"]
    assert (
        "jupiter JUP-USD: missed ticks: 2012-03-01T00:00:10Z..00:00:11Z (2), "
        "2012-03-01T00:00:58Z..00:00:59Z (2)" in lines
    )
    assert any(line.startswith("jupiter JUP-USD: 2 rows off the 1 s tick grid") for line in lines)
    assert lines[-1] == (
        "1 of 2 polled tokens of 1 source missed ticks or hold duplicates: "
        "jupiter JUP-USD (4 missed)"
    )  # no trades table and no trades verdict: only polled tokens were asked for


def test_tick_ranges_as_text() -> None:
    assert tick_range_text(TickRange(D + 3 * S, D + 5 * S, S)) == (
        "2012-03-01T00:00:03Z..00:00:05Z (3)"
    )
    assert tick_range_text(TickRange(D, D, S)) == "2012-03-01T00:00:00Z (1)"
    half = 500 * MS
    assert tick_range_text(TickRange(D + half, D + 86_400 * S, half)) == (
        "2012-03-01T00:00:00.5Z..2012-03-02T00:00:00Z (172800)"
    )


# --- the configuration ------------------------------------------------------------------------


def test_every_token_of_every_enabled_source_is_expected() -> None:
    config = load_config(
        CONFIG_FILE,
        environ={
            "MARKETSTREAM_SOURCES__BIRDEYE__ENABLED": "true",
            "MARKETSTREAM_SOURCES__BIRDEYE__CADENCE_S": "0.5",
            "MARKETSTREAM_SOURCES__BIRDEYE__DEADLINE_S": "3",
        },
    )
    specs = polled_symbols(config)
    jupiter = config.sources["jupiter"]
    assert [s.symbol for s in specs if s.source == "jupiter"] == [
        f"{token}-USD" for token in jupiter.symbols
    ]
    assert len(specs) == len(jupiter.symbols) + len(config.sources["birdeye"].symbols)
    birdeye = next(s for s in specs if s.source == "birdeye")
    assert (birdeye.cadence_ns, birdeye.deadline_ns) == (500 * MS, 3 * S)
    jup = next(s for s in specs if s.source == "jupiter")
    assert jup.deadline_ns == round(2 * jupiter.cadence_s * S)  # default: twice the cadence
    off = load_config(CONFIG_FILE, environ={"MARKETSTREAM_SOURCES__JUPITER__ENABLED": "false"})
    assert polled_symbols(off) == []  # birdeye is off by default


def test_each_token_is_expected_in_its_own_source_quote(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored symbol is `<SYMBOL>-<quote>` with the source's own quote, as the poller
    stores it, not one quote assumed for every source."""
    jupiter = registry.get_source("jupiter")
    monkeypatch.setattr(
        registry,
        "SOURCE_DEFS",
        MappingProxyType(dict(registry.SOURCE_DEFS) | {"jupiter": replace(jupiter, quote="EUR")}),
    )
    config = load_config(CONFIG_FILE, environ={})
    tokens = config.sources["jupiter"].symbols
    assert [s.symbol for s in polled_symbols(config)] == [f"{token}-EUR" for token in tokens]
