"""The quality report as JSON (one document) or as an aligned table with detail lines."""

from __future__ import annotations

from typing import Any, Final

from marketstream.quality.gaps import Interval
from marketstream.quality.polled import AgeFigure, PolledQuality
from marketstream.quality.report import InstrumentQuality, QualityReport
from marketstream.quality.ticks import NS_PER_S, TickRange
from marketstream.query.hot_queries import format_ns

SHOWN_RANGES: Final = 5  # missing ranges listed per instrument in the table (JSON has all)
NS_PER_MS: Final = 1_000_000


def report_dict(report: QualityReport) -> dict[str, Any]:
    return {
        "since": format_ns(report.since_ns),
        "until": format_ns(report.until_ns),
        "min_completeness": report.min_completeness,
        "passed": report.passed,
        "instruments": [_instrument_dict(i) for i in report.instruments],
        "dead_letters": None
        if report.dead_letters is None
        else [
            {
                "exchange": exchange,
                "total": counts.total,
                "reasons": dict(sorted(counts.reasons.items())),
            }
            for exchange, counts in report.dead_letters.items()
        ],
        "book_counters_from": list(report.book_sources),
        "polled_from_first_tick": report.from_first_tick,
        "polled": [_polled_dict(p) for p in report.polled],
        "notes": list(report.notes),
    }


def _instrument_dict(row: InstrumentQuality) -> dict[str, Any]:
    ids: dict[str, Any] | None = None
    if row.ids is not None:
        gaps = row.ids.gaps
        ids = {
            "first": None if gaps is None else gaps.lowest,
            "last": None if gaps is None else gaps.highest,
            "missing": 0 if gaps is None else gaps.missing_ids,
            "ranges": [] if gaps is None else [[r.first, r.last] for r in gaps.missing],
            "cut_short": row.ids.cut_short,
        }
    book = row.book
    return {
        "exchange": row.exchange,
        "symbol": row.symbol,
        "trades": row.trades,
        "first_trade": None if row.first_trade_ns is None else format_ns(row.first_trade_ns),
        "last_trade": None if row.last_trade_ns is None else format_ns(row.last_trade_ns),
        "minutes_expected": row.minutes.expected,
        "minutes_with_trades": row.minutes.with_trades,
        "minutes_missing": row.minutes.missing_minutes,
        "missing_minutes": [_interval_dict(i) for i in row.minutes.missing],
        "completeness": row.completeness,
        "trade_ids": ids,
        "book": None
        if book is None
        else {
            "gaps": book.gaps,
            "resyncs": book.resyncs,
            "checksum_failures": book.checksum_failures,
        },
        "dead_letters": row.dead_letters,
        "freshness_worst_ms": _ms(row.worst_freshness_ns),
        "freshness_p99_ms": _ms(row.p99_freshness_ns),
        "passed": row.passed,
    }


def _polled_dict(row: PolledQuality) -> dict[str, Any]:
    span = row.span
    return {
        "source": row.source,
        "symbol": row.symbol,
        "cadence_s": row.cadence_ns / NS_PER_S,
        "first_tick": format_ns(span.start_ns),  # the first tick expected
        "end": format_ns(span.end_ns),  # exclusive: ticks before it are expected
        "expected": row.expected,
        "present": row.present,
        "missed": row.missed,
        "duplicates": row.duplicates,
        "off_grid": row.off_grid,
        "missed_ranges": [
            {"first": format_ns(r.first_ns), "last": format_ns(r.last_ns), "ticks": r.ticks}
            for r in row.missed_ranges
        ],
        "missed_range_count": row.missed_range_count,
        "age": _age_dict(row.age),
        "passed": row.passed,
    }


def _age_dict(age: AgeFigure | None) -> dict[str, Any] | None:
    if age is None:
        return None
    return {
        "measure": age.measure,
        "samples": age.samples,
        "p50_ms": _ms(age.p50_ns),
        "p99_ms": _ms(age.p99_ns),
        "max_ms": _ms(age.max_ns),
    }


def _interval_dict(interval: Interval) -> dict[str, Any]:
    return {
        "start": format_ns(interval.start_ns),
        "end": format_ns(interval.end_ns),
        "minutes": interval.minutes,
    }


_HEADER: Final = (
    "exchange", "symbol", "trades", "minutes", "missing", "complete", "id_gaps", "ids_missing",
    "resyncs", "dlq", "worst_ms", "p99_ms", "status",
)  # fmt: skip
_LEFT: Final = frozenset(("exchange", "symbol", "status"))


_POLLED_HEADER: Final = (
    "source", "symbol", "cadence", "expected", "present", "missed", "dups", "ranges",
    "age_p50_ms", "age_p99_ms", "age_max_ms", "age_by", "status",
)  # fmt: skip
_POLLED_LEFT: Final = frozenset(("source", "symbol", "age_by", "status"))


def report_lines(report: QualityReport) -> list[str]:
    """The trades table, then its missing ranges; the polled sources' table, then their
    missed ticks; dead letters by reason, notes and the verdicts."""
    lines: list[str] = []
    if report.instruments or not report.polled:
        lines.extend(_table(_HEADER, _LEFT, [_row_cells(row) for row in report.instruments]))
        for row in report.instruments:
            lines.extend(_detail_lines(row))
    if report.polled:
        lines.extend(
            _table(_POLLED_HEADER, _POLLED_LEFT, [_polled_cells(row) for row in report.polled])
        )
        for polled in report.polled:
            lines.extend(_polled_detail_lines(polled))
    if report.dead_letters:
        lines.append("dead letters (md:dlq) by exchange:")
        for exchange, counts in report.dead_letters.items():
            reasons = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.reasons.items()))
            lines.append(f"  {exchange}: {counts.total} ({reasons})")
    lines.extend(f"note: {note}" for note in report.notes)
    if report.polled:
        lines.append(_polled_verdict(report))
    if report.instruments or not report.polled:
        lines.append(_verdict(report))
    return lines


def _table(
    header: tuple[str, ...], left: frozenset[str], cells: list[tuple[str, ...]]
) -> list[str]:
    widths = [max(len(name), *(len(c[i]) for c in cells)) for i, name in enumerate(header)]
    return [
        "  ".join(
            text.ljust(width) if name in left else text.rjust(width)
            for text, width, name in zip(line, widths, header, strict=True)
        ).rstrip()
        for line in (header, *cells)
    ]


def _polled_cells(row: PolledQuality) -> tuple[str, ...]:
    age = row.age
    return (
        row.source,
        row.symbol,
        f"{row.cadence_ns / NS_PER_S:g}s",
        str(row.expected),
        str(row.present),
        str(row.missed),
        str(row.duplicates),
        str(row.missed_range_count),
        "-" if age is None else _ms_text(age.p50_ns),
        "-" if age is None else _ms_text(age.p99_ns),
        "-" if age is None else _ms_text(age.max_ns),
        "-" if age is None else age.measure,
        "ok" if row.passed else "FAIL",
    )


def _polled_detail_lines(row: PolledQuality) -> list[str]:
    name = f"{row.source} {row.symbol}"
    lines: list[str] = []
    ranges = row.missed_ranges
    if ranges:
        shown = ", ".join(tick_range_text(r) for r in ranges[:SHOWN_RANGES])
        unlisted = row.missed_range_count - min(len(ranges), SHOWN_RANGES)
        more = f" and {unlisted} more" if unlisted else ""
        lines.append(f"{name}: missed ticks: {shown}{more}")
    if row.off_grid:
        lines.append(
            f"{name}: {row.off_grid} rows off the {row.cadence_ns / NS_PER_S:g} s tick grid "
            "(their ts is no tick: not counted as present)"
        )
    return lines


def tick_time(ns: int) -> str:
    """ISO-8601 UTC to the second, with the fraction only where a tick has one."""
    text = format_ns(ns)
    seconds, fraction = text[:19], text[20:-1].rstrip("0")
    return f"{seconds}{'.' + fraction if fraction else ''}Z"


def tick_range_text(ticks: TickRange) -> str:
    """`2026-12-07T10:00:03Z..10:00:05Z (3)`; one tick alone: `2026-12-07T10:00:03Z (1)`."""
    first = tick_time(ticks.first_ns)
    if ticks.first_ns == ticks.last_ns:
        return f"{first} (1)"
    last = tick_time(ticks.last_ns)
    if last[:11] == first[:11]:  # the same day: the time of day says it
        last = last[11:]
    return f"{first}..{last} ({ticks.ticks})"


def _polled_verdict(report: QualityReport) -> str:
    rows = report.polled
    failing = report.failing_polled
    sources = len({row.source for row in rows})
    counted = f"{len(rows)} polled token{'s' if len(rows) != 1 else ''} of {sources} source"
    counted += "s" if sources != 1 else ""
    if not failing:
        return f"{counted}: no missed tick, no duplicate"
    names = ", ".join(
        f"{p.source} {p.symbol} ({p.missed} missed"
        + (f", {p.duplicates} duplicates" if p.duplicates else "")
        + ")"
        for p in failing
    )
    return f"{len(failing)} of {counted} missed ticks or hold duplicates: {names}"


def _row_cells(row: InstrumentQuality) -> tuple[str, ...]:
    gaps = None if row.ids is None else row.ids.gaps
    cut = "+" if row.ids is not None and row.ids.cut_short else ""
    return (
        row.exchange,
        row.symbol,
        str(row.trades),
        str(row.minutes.expected),
        str(row.minutes.missing_minutes),
        "-" if row.completeness is None else f"{row.completeness:.2%}",
        "-" if gaps is None else f"{len(gaps.missing)}{cut}",
        "-" if gaps is None else f"{gaps.missing_ids}{cut}",
        "n/a" if row.book is None else str(row.book.resyncs),
        str(row.dead_letters),
        _ms_text(row.worst_freshness_ns),
        _ms_text(row.p99_freshness_ns),
        "ok" if row.passed else "FAIL",
    )


def _detail_lines(row: InstrumentQuality) -> list[str]:
    name = f"{row.exchange} {row.symbol}"
    lines: list[str] = []
    missing = row.minutes.missing
    if missing:
        shown = ", ".join(_interval_text(i) for i in missing[:SHOWN_RANGES])
        more = f" and {len(missing) - SHOWN_RANGES} more" if len(missing) > SHOWN_RANGES else ""
        lines.append(f"{name}: minutes without a trade: {shown}{more}")
    gaps = None if row.ids is None else row.ids.gaps
    if gaps is not None and gaps.missing:
        ranges = gaps.missing
        shown = ", ".join(
            str(r.first) if r.first == r.last else f"{r.first}-{r.last}"
            for r in ranges[:SHOWN_RANGES]
        )
        more = f" and {len(ranges) - SHOWN_RANGES} more" if len(ranges) > SHOWN_RANGES else ""
        lines.append(f"{name}: trade ids missing: {shown}{more}")
    if row.ids is not None and row.ids.cut_short:
        lines.append(f"{name}: trade ids break too often to list: they may not be sequential")
    if row.book is not None and (row.book.gaps or row.book.checksum_failures):
        lines.append(
            f"{name}: book sequence gaps {row.book.gaps}, checksum failures "
            f"{row.book.checksum_failures}, resyncs {row.book.resyncs} (since ingest started)"
        )
    return lines


def _interval_text(interval: Interval) -> str:
    start, end = format_ns(interval.start_ns), format_ns(interval.end_ns)
    return f"{start[:16]}Z..{end[:16]}Z ({interval.minutes} min)"


def _verdict(report: QualityReport) -> str:
    failing = report.failing
    threshold = f"{report.min_completeness:.2%}"
    if not report.instruments:
        return "no trades and no configured instrument in the range"
    if len(report.instruments) == 1 and not failing:
        return f"1 instrument, at or above {threshold} completeness"
    if not failing:
        return f"{len(report.instruments)} instruments, all at or above {threshold} completeness"
    names = ", ".join(f"{i.exchange} {i.symbol}" for i in failing)
    return f"{len(failing)} of {len(report.instruments)} instruments below {threshold}: {names}"


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / NS_PER_MS, 3)


def _ms_text(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / NS_PER_MS:.1f}"
