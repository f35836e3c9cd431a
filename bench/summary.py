"""The issue's headline figures against their targets, from one `make bench` run's results.

Each row: what was measured, its value, the target, and "met", "not met" or "info". A figure
that is missing (its suite skipped or failed) is "not met" with the reason as its value:
a target is only met by a number measured in this run.
"""

from __future__ import annotations

from typing import Any

CRYPTOFEED_RATIO = 3.0
RECORDS_PER_S = 50_000
WRITER_ROWS_PER_S = 250_000
FRESHNESS_P99_MS = 1000.0
FRESHNESS_RATE = 20_000
SERVE_P95_MS = 100.0  # #16's seed target for the API's answers
SOURCE_WRITE_P99_MS = 50.0  # #18: database write latency of polled prices
SOURCE_API_P95_MS = 100.0  # #18: the API over them
COUNTED = (
    "pipeline",
    "freshness",
    "hot",
    "cluster",
    "serve",
    "sources",
)  # the suites that check their counts

Row = dict[str, str]


def _row(figure: str, value: str, target: str, met: bool | None) -> Row:
    status = "info" if met is None else "met" if met else "not met"
    return {"figure": figure, "value": value, "target": target, "status": status}


def _missing(suite: Any) -> str | None:
    """Why a suite has no figures, or None when it has."""
    if not isinstance(suite, dict):
        return "not run"
    for key in ("error", "skipped"):
        if key in suite:
            return f"{key}: {suite[key]}"
    return None


def _cryptofeed(results: dict[str, Any]) -> list[Row]:
    target = f">= {CRYPTOFEED_RATIO:g}x on >= 300k frames"
    suite: Any = results.get("cryptofeed")
    if (why := _missing(suite)) is not None:
        return [_row("normalize vs cryptofeed", why, target, False)]
    rows = []
    for recording, result in suite.items():
        if not isinstance(result, dict) or ("exchange" not in result and "skipped" not in result):
            continue
        long = result.get("long", {})
        figure = f"normalize vs cryptofeed, {recording}"
        if "ratio_frames_per_s" not in long:
            why = result.get("skipped") or long.get("error") or result.get("cryptofeed")
            rows.append(_row(figure, f"not measured: {why}", target, False))
            continue
        ratio = long["ratio_frames_per_s"]
        value = (
            f"{ratio}x ({long['ours']['frames_per_s']:,} vs "
            f"{long['cryptofeed']['frames_per_s']:,} frames/s, {long['frames']:,} frames)"
        )
        rows.append(_row(figure, value, target, ratio >= CRYPTOFEED_RATIO))
        whole = result.get("whole_process")
        if whole is not None:
            rows.append(_whole_process(recording, whole, target))
    return rows or [_row("normalize vs cryptofeed", "no recording compared", target, False)]


def _whole_process(recording: str, whole: dict[str, Any], target: str) -> Row:
    """`marketstream normalize` against cryptofeed's playback(), whole processes."""
    figure = f"normalize vs cryptofeed playback, whole processes, {recording}"
    if "ratio_frames_per_s" not in whole:
        return _row(figure, f"not measured: {whole.get('error')}", target, False)
    ratio = whole["ratio_frames_per_s"]
    value = (
        f"{ratio}x ({whole['ours']['frames_per_s']:,} vs "
        f"{whole['cryptofeed']['frames_per_s']:,} frames/s, {whole['frames']:,} frames, "
        f"start-up {whole['ours']['startup_s']} vs {whole['cryptofeed']['startup_s']} s; "
        f"counts {whole['counts']})"
    )
    return _row(figure, value, target, ratio >= CRYPTOFEED_RATIO)


def _pipeline(results: dict[str, Any]) -> list[Row]:
    target = f">= {RECORDS_PER_S:,} records/s"
    suite: Any = results.get("pipeline")
    if (why := _missing(suite)) is not None:
        return [_row("replay -> queryable, ingest + writers as processes", why, target, False)]
    rows = []
    for key in sorted(k for k in suite if k.startswith("writers_")):
        result = suite[key]
        rate = result["records_per_s"]
        rows.append(
            _row(
                f"replay -> queryable, ingest + {result['writers']} writer process(es)",
                f"{rate:,} records/s ({result['records']:,} records)",
                target,
                rate >= RECORDS_PER_S,
            )
        )
    margin = suite.get("marginal_1_writer")
    if margin is not None:
        rate = margin["records_per_s"]
        rows.append(
            _row(
                "replay -> queryable, marginal rate (the issue's measure), 1 writer",
                margin["text"],
                target,
                rate is not None and rate >= RECORDS_PER_S,
            )
        )
    return rows


def _writer(results: dict[str, Any]) -> Row:
    target = f">= {WRITER_ROWS_PER_S:,} rows/s"
    suite: Any = results.get("hot")
    if (why := _missing(suite)) is not None:
        return _row("one writer draining a backlog", why, target, False)
    backlog = suite["writer_backlog"]
    rate = backlog["rows_per_s"]
    value = f"{rate:,} rows/s ({backlog['entries']:,} entries)"
    if "cpu_s_per_1000_rows" in backlog:
        cpu = ", ".join(f"{k} {v:.4f}" for k, v in backlog["cpu_s_per_1000_rows"].items())
        value += f"; CPU s per 1,000 rows: {cpu}"
    again = backlog.get("again", {})
    if {"aof_on", "aof_off"} <= again.keys():  # the target is judged on the first run only
        value += (
            f"; again on the warm JVM: {again['aof_on']['rows_per_s']:,} with Redis's AOF on, "
            f"{again['aof_off']['rows_per_s']:,} with it off"
        )
    return _row("one writer draining a backlog", value, target, rate >= WRITER_ROWS_PER_S)


def _fresh_value(run: dict[str, Any]) -> str:
    return (
        f"steady p50 {_ms(run['freshness_ms_p50'])}, p99 {_ms(run['freshness_ms_p99'])} "
        f"(whole run p99 {_ms(run.get('whole_run_freshness_ms_p99'))}); achieved "
        f"{run['achieved_records_per_s']:,} of {run['offered_records_per_s']:,}/s"
        + ("" if run["sustained"] else ", NOT sustained")
    )


def _ms(value: float | None) -> str:
    return "none" if value is None else f"{value:.0f} ms"


def _freshness(results: dict[str, Any]) -> list[Row]:
    figure = f"freshness receive -> written at {FRESHNESS_RATE:,} records/s"
    target = f"p99 < {FRESHNESS_P99_MS / 1000:g} s, rate sustained"
    suite: Any = results.get("freshness")
    if (why := _missing(suite)) is not None:
        return [_row(figure, why, target, False)]
    runs = suite["runs"]
    at_target = [r for r in runs if r["target_records_per_s"] == FRESHNESS_RATE]
    if not at_target:
        return [_row(figure, "not measured", target, False)]
    first = at_target[0]
    p99 = first["freshness_ms_p99"]
    met = bool(first["sustained"]) and p99 is not None and p99 < FRESHNESS_P99_MS
    rows = [_row(figure, _fresh_value(first), target, met)]
    if not first["sustained"]:
        steady = [r for r in runs if r["sustained"]]
        if steady:
            best = steady[0]
            figure = f"freshness at the highest sustained rate, {best['target_records_per_s']:,}/s"
            rows.append(_row(figure, _fresh_value(best), "(info)", None))
        else:
            tried = ", ".join(f"{r['target_records_per_s']:,}" for r in runs)
            rows.append(_row("highest sustained rate", f"none of {tried}/s", "(info)", None))
    low = suite.get("low_rate")
    if low is not None:
        cores = low["cores_used"].get("questdb-server")
        figure = f"freshness at {low['target_records_per_s']:,} records/s (a quiet feed)"
        value = f"{_fresh_value(low)}; QuestDB used {cores} cores"
        rows.append(_row(figure, value, "(info)", None))
    return rows


def _cluster(results: dict[str, Any]) -> Row | None:
    suite: Any = results.get("cluster")
    if _missing(suite) is not None:
        return None
    rates = {k: v for k, v in suite.items() if k.endswith("_records_per_s")}
    value = ", ".join(
        f"{k.removeprefix('writers_').removesuffix('_records_per_s')}: {v:,}"
        for k, v in rates.items()
    )
    return _row("3-node Redis Cluster, records/s by writer processes", value, "(info)", None)


def _counts(results: dict[str, Any]) -> Row:
    failed = {name: why for name in COUNTED if (why := _missing(results.get(name)))}
    value = (
        "rows == published in " + ", ".join(COUNTED)
        if not failed
        else "; ".join(f"{name} {why}" for name, why in failed.items())
    )
    return _row("nothing lost or doubled (checked in this run)", value, "all suites", not failed)


def _sources(results: dict[str, Any]) -> list[Row]:
    """#18: polled tokens at one tick a second through injected faults."""
    suite: Any = results.get("sources")
    if (why := _missing(suite)) is not None:
        return [_row("polled sources", why, "zero missed ticks", False)]
    rows = []
    for key in sorted((k for k in suite if k.startswith("tokens_")), key=lambda k: int(k[7:])):
        r = suite[key]
        n = r["tokens"]
        rows += [
            _row(
                f"{n} polled tokens at 1 s, faults injected: ticks",
                f"{r['token_ticks_per_s']} token ticks/s, {r['token_ticks_missed']} missed "
                f"({r['rows']:,} rows, each once)",
                "0 missed",
                r["token_ticks_missed"] == 0,
            ),
            _row(
                f"{n} polled tokens: write latency p99",
                f"{r['write_latency_ms_p99']} ms",
                f"< {SOURCE_WRITE_P99_MS:g} ms",
                r["write_latency_ms_p99"] is not None
                and r["write_latency_ms_p99"] < SOURCE_WRITE_P99_MS,
            ),
            _row(
                f"{n} polled tokens: fetch -> queryable",
                f"steady p50 {r['fetch_to_queryable_ms_p50']} ms, p99 "
                f"{r['fetch_to_queryable_ms_p99']} ms (whole run p99 "
                f"{r.get('fetch_to_queryable_ms_p99_whole_run')} ms)",
                "(info)",
                None,
            ),
            _row(
                f"{n} polled tokens: API p95",
                f"/v1/latest {r['api_latest_ms_p95']} ms, /v1/prices (1 min) "
                f"{r['api_prices_minute_ms_p95']} ms",
                f"< {SOURCE_API_P95_MS:g} ms",
                max(r["api_latest_ms_p95"], r["api_prices_minute_ms_p95"]) < SOURCE_API_P95_MS,
            ),
        ]
    return rows


def _serve(results: dict[str, Any]) -> list[Row]:
    """The API's figures (#16): latencies against the seed target, fan-out and replay as info."""
    target = f"p95 < {SERVE_P95_MS:g} ms"
    suite: Any = results.get("serve")
    if (why := _missing(suite)) is not None:
        return [_row("serve API", why, target, False)]
    latest = suite["latest"]
    rows = [
        _row(
            "serve: /v1/latest over HTTP",
            f"p50 {latest['ms_p50']} ms, p95 {latest['ms_p95']} ms, p99 {latest['ms_p99']} ms",
            target,
            latest["ms_p95"] < SERVE_P95_MS,
        )
    ]
    for tier in ("hot", "warm", "cold"):
        for key, figure in ((f"candles_1m_day_{tier}", "1m candles of one day"),
                            (f"trades_1h_{tier}", "one hour of trades")):  # fmt: skip
            value = suite[key]
            built = f" ({value['trades']:,} trades)" if "trades" in value else ""
            rows.append(
                _row(
                    f"serve: {figure}, {tier} tier",
                    f"p95 {value['ms_p95']} ms{built}",
                    target,
                    value["ms_p95"] < SERVE_P95_MS,
                )
            )
    fan, replay = suite["stream_fan_out"], suite["replay"]
    rows.append(
        _row(
            f"serve: /v1/stream to {fan['clients']} clients",
            f"{fan['records_delivered_per_s']:,} records/s delivered, lag p99 "
            f"{fan['lag_ms_p99']} ms ({fan['published_per_s']:,}/s published)",
            "(info)",
            None,
        )
    )
    rows.append(
        _row(
            "serve: /v1/replay, a cold day",
            f"{replay['records_per_s']:,} records/s",
            "(info)",
            None,
        )
    )
    return rows


def _export(results: dict[str, Any]) -> list[Row]:
    """Export rows/s of a day of trades per format (#17): information, no target."""
    suite: Any = results.get("export")
    if (why := _missing(suite)) is not None:
        return [_row("export: a day of trades", why, "(info)", None)]
    rows = []
    for fmt, figures in suite["formats"].items():
        if "skipped" in figures:
            rows.append(_row(f"export to {fmt}", f"skipped: {figures['skipped']}", "(info)", None))
            continue
        what = "1m bars of the day" if figures["type"] == "candles" else "a day of trades"
        rows.append(
            _row(
                f"export to {fmt}: {what}, {figures['tier']} tier",
                f"{figures['rows']:,} rows in {figures['seconds']} s = "
                f"{figures['rows_per_s']:,} rows/s",
                "(info)",
                None,
            )
        )
    whole, days = suite.get("three_days"), suite.get("tiers", {}).values()
    peaks = [day["peak_rss_mb"] for day in days if "peak_rss_mb" in day]
    if whole and peaks:  # three days against the biggest single day (one from each tier)
        rows.append(
            _row(
                "export memory: tardis-csv peak RSS, 3 days (every tier) vs 1",
                f"{whole['peak_rss_mb']} MB for {whole['rows']:,} rows vs at most "
                f"{max(peaks)} MB for one day",
                "bounded by a day",
                whole["peak_rss_mb"] <= 1.25 * max(peaks),
            )
        )
    return rows


def headline(results: dict[str, Any]) -> list[Row]:
    rows = [
        *_cryptofeed(results),
        *_pipeline(results),
        _writer(results),
        *_freshness(results),
        _counts(results),
    ]
    cluster = _cluster(results)
    return (
        rows
        + ([cluster] if cluster else [])
        + _serve(results)
        + _export(results)
        + _sources(results)
    )


WIDEST = 120  # a longer value (an error, say) is cut in the table; results.json has it whole


def table(rows: list[Row]) -> str:
    """A fixed-width table, one row per figure."""
    heads = {"figure": "figure", "value": "measured", "target": "target", "status": ""}
    rows = [{**r, "value": _cut(r["value"])} for r in rows]
    widths = {k: max(len(heads[k]), *(len(r[k]) for r in rows)) for k in heads}
    lines = [
        "== summary: the issue's targets",
        "  ".join(heads[k].ljust(widths[k]) for k in heads).rstrip(),
        "  ".join("-" * widths[k] for k in heads),
    ]
    lines += ["  ".join(r[k].ljust(widths[k]) for k in heads).rstrip() for r in rows]
    return "\n".join(lines)


def _cut(text: str) -> str:
    return text if len(text) <= WIDEST else text[: WIDEST - 3] + "..."
