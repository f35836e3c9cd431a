"""`make bench`'s summary: a target is met only by a figure measured in the run."""

from __future__ import annotations

from typing import Any

from bench.summary import headline, table


def _freshness(rate: int, p99: float, sustained: bool) -> dict[str, Any]:
    return {
        "target_records_per_s": rate,
        "freshness_ms_p50": p99 / 4,
        "freshness_ms_p99": p99,
        "offered_records_per_s": rate,
        "achieved_records_per_s": rate if sustained else rate // 2,
        "sustained": sustained,
    }


def _serve() -> dict[str, Any]:
    fast, slow = {"ms_p50": 5.0, "ms_p95": 40.0, "ms_p99": 60.0}, {"ms_p95": 140.0}
    return {
        "latest": fast,
        **{f"candles_1m_day_{tier}": fast for tier in ("hot", "warm")},
        "candles_1m_day_cold": slow,
        **{f"trades_1h_{tier}": fast for tier in ("hot", "warm", "cold")},
        "stream_fan_out": {"clients": 100, "records_delivered_per_s": 50_000,
                           "lag_ms_p99": 30.0, "published_per_s": 500},
        "replay": {"records_per_s": 40_000},
    }  # fmt: skip


def _sources(missed: int, write_p99: float) -> dict[str, Any]:
    run = {"tokens": 15, "token_ticks_per_s": 15.0, "token_ticks_missed": missed, "rows": 450,
           "write_latency_ms_p99": write_p99, "fetch_to_queryable_ms_p50": 90.0,
           "fetch_to_queryable_ms_p99": 190.0, "api_latest_ms_p95": 1.0,
           "api_prices_minute_ms_p95": 20.0}  # fmt: skip
    return {"tokens_15": run, "tokens_150": run | {"tokens": 150, "api_latest_ms_p95": 120.0}}


def _results(**changes: Any) -> dict[str, Any]:
    long = {"ratio_frames_per_s": 3.4, "frames": 300_000, "ours": {"frames_per_s": 340_000},
            "cryptofeed": {"frames_per_s": 100_000}}  # fmt: skip
    results: dict[str, Any] = {
        "cryptofeed": {"cryptofeed_version": "2", "a.jsonl": {"exchange": "a", "long": long}},
        "pipeline": {
            "frames": 300_000,
            "writers_1": {"writers": 1, "records": 150_000, "records_per_s": 40_000},
            "writers_2": {"writers": 2, "records": 150_000, "records_per_s": 55_000},
        },
        "hot": {"writer_backlog": {"rows_per_s": 260_000, "entries": 200_000}},
        "freshness": {"runs": [_freshness(20_000, 800.0, True)]},
        "cluster": {"writers_1_records_per_s": 10, "writers_2_records_per_s": 20},
        "serve": _serve(),
        "export": {
            "formats": {
                "tardis-csv": {"tier": "cold", "type": "trades", "rows": 800_000,
                               "seconds": 1.6, "rows_per_s": 500_000},
                "vectorbt": {"tier": "cold", "type": "candles", "rows": 1_440,
                             "seconds": 0.2, "rows_per_s": 7_200},
                "nautilus": {"skipped": ".venv-nautilus missing"},
            }
        },
        "sources": _sources(missed=0, write_p99=30.0),
    }  # fmt: skip
    results.update(changes)
    return results


def _status(rows: list[dict[str, str]]) -> dict[str, str]:
    return {row["figure"]: row["status"] for row in rows}


def test_each_target_is_judged_on_its_figure() -> None:
    status = _status(headline(_results()))
    assert status == {
        "normalize vs cryptofeed, a.jsonl": "met",
        "replay -> queryable, ingest + 1 writer process(es)": "not met",
        "replay -> queryable, ingest + 2 writer process(es)": "met",
        "one writer draining a backlog": "met",
        "freshness receive -> written at 20,000 records/s": "met",
        "nothing lost or doubled (checked in this run)": "met",
        "3-node Redis Cluster, records/s by writer processes": "info",
        "serve: /v1/latest over HTTP": "met",
        "serve: 1m candles of one day, hot tier": "met",
        "serve: one hour of trades, hot tier": "met",
        "serve: 1m candles of one day, warm tier": "met",
        "serve: one hour of trades, warm tier": "met",
        "serve: 1m candles of one day, cold tier": "not met",
        "serve: one hour of trades, cold tier": "met",
        "serve: /v1/stream to 100 clients": "info",
        "serve: /v1/replay, a cold day": "info",
        "export to tardis-csv: a day of trades, cold tier": "info",
        "export to vectorbt: 1m bars of the day, cold tier": "info",
        "export to nautilus": "info",
        "15 polled tokens at 1 s, faults injected: ticks": "met",
        "15 polled tokens: write latency p99": "met",
        "15 polled tokens: fetch -> queryable": "info",
        "15 polled tokens: API p95": "met",
        "150 polled tokens at 1 s, faults injected: ticks": "met",
        "150 polled tokens: write latency p99": "met",
        "150 polled tokens: fetch -> queryable": "info",
        "150 polled tokens: API p95": "not met",
    }


def test_a_missed_tick_or_a_slow_write_fails_the_polled_targets() -> None:
    status = _status(headline(_results(sources=_sources(missed=3, write_p99=80.0))))
    assert status["15 polled tokens at 1 s, faults injected: ticks"] == "not met"
    assert status["15 polled tokens: write latency p99"] == "not met"


def test_an_unsustained_rate_is_not_met_and_the_sustained_one_is_shown() -> None:
    runs = [_freshness(20_000, 300.0, False), _freshness(10_000, 400.0, True)]
    rows = headline(_results(freshness={"runs": runs}))
    status = _status(rows)
    assert status["freshness receive -> written at 20,000 records/s"] == "not met"
    assert status["freshness at the highest sustained rate, 10,000/s"] == "info"
    assert "NOT sustained" in table(rows)


def test_a_failed_suite_fails_its_target_and_the_counts() -> None:
    rows = headline(_results(hot={"error": "AssertionError: rows differ"}, cryptofeed={
        "skipped": "cryptofeed is not importable"}))  # fmt: skip
    status = _status(rows)
    assert status["one writer draining a backlog"] == "not met"
    assert status["normalize vs cryptofeed"] == "not met"
    assert status["nothing lost or doubled (checked in this run)"] == "not met"
    counts = next(r for r in rows if r["figure"].startswith("nothing lost"))
    assert "hot error: AssertionError: rows differ" in counts["value"]


def test_the_marginal_rate_is_judged_against_the_same_target() -> None:
    pipeline = _results()["pipeline"]
    figure = "replay -> queryable, marginal rate (the issue's measure), 1 writer"
    for rate, status in ((52_000, "met"), (31_000, "not met"), (None, "not met")):
        margin = {"records_per_s": rate, "text": f"{rate} records/s"}
        rows = headline(_results(pipeline=pipeline | {"marginal_1_writer": margin}))
        assert _status(rows)[figure] == status


def test_the_quiet_feed_is_shown_with_questdb_s_cores() -> None:
    low = _freshness(2_000, 475.0, True) | {"cores_used": {"questdb-server": 0.43}}
    freshness = {"runs": [_freshness(20_000, 800.0, True)], "low_rate": low}
    rows = headline(_results(freshness=freshness))
    row = next(r for r in rows if r["figure"] == "freshness at 2,000 records/s (a quiet feed)")
    assert row["status"] == "info"
    assert "p99 475 ms" in row["value"]
    assert "QuestDB used 0.43 cores" in row["value"]


def test_whole_processes_are_judged_on_their_own_ratio() -> None:
    whole = {"ratio_frames_per_s": 0.84, "frames": 300_000, "counts": "equal",
             "ours": {"frames_per_s": 207_000, "startup_s": 0.4},
             "cryptofeed": {"frames_per_s": 247_000, "startup_s": 0.3}}  # fmt: skip
    long = _results()["cryptofeed"]["a.jsonl"]
    for result, status in ((whole, "not met"), (whole | {"ratio_frames_per_s": 3.1}, "met")):
        suite = {"a.jsonl": long | {"whole_process": result}}
        rows = headline(_results(cryptofeed=suite))
        assert _status(rows)["normalize vs cryptofeed playback, whole processes, a.jsonl"] == status
    failed = {"a.jsonl": long | {"whole_process": {"error": "RuntimeError: playback exited 1"}}}
    row = next(r for r in headline(_results(cryptofeed=failed)) if "whole" in r["figure"])
    assert row["status"] == "not met"
    assert "playback exited 1" in row["value"]


def test_the_writer_is_judged_on_its_first_drain_not_the_one_without_aof() -> None:
    again = {"aof_on": {"rows_per_s": 230_000}, "aof_off": {"rows_per_s": 270_000}}
    backlog = {"rows_per_s": 200_000, "entries": 1_000_000, "again": again,
               "cpu_s_per_1000_rows": {"writer": 0.0025, "redis-server": 0.0034}}  # fmt: skip
    row = next(
        r
        for r in headline(_results(hot={"writer_backlog": backlog}))
        if r["figure"] == "one writer draining a backlog"
    )
    assert row["status"] == "not met"
    assert "writer 0.0025, redis-server 0.0034" in row["value"]
    assert "230,000 with Redis's AOF on, 270,000 with it off" in row["value"]
