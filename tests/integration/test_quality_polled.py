"""The quality report's polled sources against the real QuestDB: expected, present, missed and
duplicate ticks, their ranges, and the age of the prices at fetch.

The prices are on 2012-03-02 for tokens no other test writes (`QP*`), two minutes of 1 s
ticks; the day's partition is dropped afterwards. Rows are written as the hot writer writes
them (`write_rows` over ILP/HTTP), so `prices` dedups on (ts, exchange, symbol) as in
production; the duplicates of QPDUP are written with dedup switched off for that one write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from questdb import Sender

from marketstream.config import load_config
from marketstream.quality.polled import (
    PolledQuality,
    PolledSymbol,
    collect_polled,
    polled_completeness,
)
from marketstream.quality.report import QualityQueries, ReportInputs, collect
from marketstream.schemas.records import Price
from marketstream.services import process
from marketstream.tiers import questdb_tables
from marketstream.tiers.questdb_rows import write_rows
from tests.integration.endpoints import CONFIG_FILE, REPO, QuestDBEndpoints
from tests.integration.serve_process import running_serve

pytestmark = pytest.mark.integration

S = 10**9
MS = 10**6
D = 1_330_646_400 * S  # 2012-03-02T00:00:00Z
DAY = "2012-03-02"
TICKS = 120
END = D + TICKS * S
WAIT_S = 60.0

HOLES = {0, 1, 10, 11, 12, 30, 115, 116, 117, 118, 119}  # QPHOLE's ticks never stored
DOUBLED = (40, 41, 42)  # QPDUP's ticks stored twice

# The tokens as configured (SYMBOL: mint); the mints are real ones, any valid id would do.
MINTS = {
    "QPOK": "So11111111111111111111111111111111111111112",
    "QPHOLE": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    "QPDUP": "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
    "QPNONE": "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN",
}
JUPITER = [PolledSymbol("jupiter", f"{token}-USD", S, 2 * S) for token in MINTS]
BIRDEYE = [PolledSymbol("birdeye", "QPAGE-USD", S, 2 * S)]


def tick(k: int) -> int:
    return D + k * S


def jupiter_rows() -> list[Price]:
    """QPOK: every tick, a new block every 4 ticks (so it had stood 0, 1, 2 and 3 s when
    fetched); QPHOLE: the HOLES missing, a new block every tick, and one row 1 ns off the
    grid where tick 30 is missing; QPDUP: every tick; QPNONE: nothing."""
    rows = [
        Price("jupiter", "QPOK-USD", tick(k), tick(k) + 150 * MS, 100.0 + k, block=5000 + k // 4)
        for k in range(TICKS)
    ]
    rows += [
        Price("jupiter", "QPHOLE-USD", tick(k), tick(k) + 100 * MS, 1.0, block=9000 + k)
        for k in range(TICKS)
        if k not in HOLES
    ]
    rows.append(Price("jupiter", "QPHOLE-USD", tick(30) + 1, tick(30) + 100 * MS, 1.0))
    rows += [Price("jupiter", "QPDUP-USD", tick(k), tick(k) + 100 * MS, 1.0) for k in range(TICKS)]
    return rows


def birdeye_rows() -> list[Price]:
    """QPAGE: every tick, dated by the source (k % 5) s before the tick, fetched 200 ms after
    it: ages 0.2, 1.2, 2.2, 3.2 and 4.2 s, 24 times each."""
    return [
        Price(
            "birdeye", "QPAGE-USD", tick(k), tick(k) + 200 * MS, 2.0, source_ts=tick(k) - k % 5 * S
        )
        for k in range(TICKS)
    ]


def _write(questdb: QuestDBEndpoints, rows: list[Price]) -> None:
    with Sender.from_conf(questdb.ilp_conf) as sender:
        write_rows(sender, rows)
        sender.flush()
    questdb.wait_applied(WAIT_S)


@pytest.fixture(scope="module")
def stored(questdb: QuestDBEndpoints) -> Iterator[QuestDBEndpoints]:
    for statement in questdb_tables.create_all_sql():
        questdb.http.exec(statement)
    _write(questdb, [*jupiter_rows(), *birdeye_rows()])
    doubles = [Price("jupiter", "QPDUP-USD", tick(k), tick(k) + 900 * MS, 1.5) for k in DOUBLED]
    questdb.http.exec("ALTER TABLE prices DEDUP DISABLE")
    try:
        questdb.wait_applied(WAIT_S)
        _write(questdb, doubles)  # what a table without its dedup keys would keep
    finally:
        questdb.http.exec("ALTER TABLE prices DEDUP ENABLE UPSERT KEYS(ts, exchange, symbol)")
        questdb.wait_applied(WAIT_S)
    yield questdb
    questdb.http.exec(f"ALTER TABLE prices DROP PARTITION LIST '{DAY}'")
    questdb.wait_applied(WAIT_S)


def _rows(
    questdb: QuestDBEndpoints,
    since: int,
    until: int,
    *,
    now_ns: int | None = None,
    grace_ns: int = 0,
    from_first_tick: bool = False,
) -> dict[str, PolledQuality]:
    with QualityQueries.connect(questdb.pg_url, environ={}) as hot:
        rows = collect_polled(
            hot,
            [*JUPITER, *BIRDEYE],
            since,
            until,
            now_ns=now_ns,
            grace_ns=grace_ns,
            from_first_tick=from_first_tick,
        )
    return {f"{row.source} {row.symbol}": row for row in rows}


def _ranges(row: PolledQuality) -> list[tuple[int, int, int]]:
    """Missed ranges as (first tick index, last tick index, ticks)."""
    return [((r.first_ns - D) // S, (r.last_ns - D) // S, r.ticks) for r in row.missed_ranges]


# --- in-process -----------------------------------------------------------------------------


def test_complete_holed_doubled_and_silent_tokens(stored: QuestDBEndpoints) -> None:
    rows = _rows(stored, D, END)
    assert list(rows) == [
        "jupiter QPOK-USD", "jupiter QPHOLE-USD", "jupiter QPDUP-USD", "jupiter QPNONE-USD",
        "birdeye QPAGE-USD",
    ]  # fmt: skip

    complete = rows["jupiter QPOK-USD"]
    assert (complete.expected, complete.present, complete.missed) == (TICKS, TICKS, 0)
    assert (complete.duplicates, complete.off_grid, complete.missed_ranges) == (0, 0, ())
    assert complete.passed

    holed = rows["jupiter QPHOLE-USD"]
    assert (holed.expected, holed.present, holed.missed) == (TICKS, TICKS - 11, 11)
    assert _ranges(holed) == [(0, 1, 2), (10, 12, 3), (30, 30, 1), (115, 119, 5)]
    assert holed.missed_range_count == 4
    assert holed.off_grid == 1  # the row 1 ns after tick 30 is no tick: 30 stays missed
    assert not holed.passed

    doubled = rows["jupiter QPDUP-USD"]
    assert (doubled.present, doubled.missed, doubled.duplicates) == (TICKS, 0, len(DOUBLED))
    assert not doubled.passed

    silent = rows["jupiter QPNONE-USD"]  # enabled in the config, nothing stored
    assert (silent.expected, silent.present, silent.missed) == (TICKS, 0, TICKS)
    assert _ranges(silent) == [(0, TICKS - 1, TICKS)]
    assert (silent.age, silent.passed) == (None, False)


def test_age_from_the_source_time_and_from_the_block(stored: QuestDBEndpoints) -> None:
    rows = _rows(stored, D, END)
    dated = rows["birdeye QPAGE-USD"].age
    assert dated is not None
    assert (dated.measure, dated.samples, dated.max_ns) == ("source_ts", TICKS, 4200 * MS)
    assert dated.p50_ns == pytest.approx(2200 * MS, rel=0.002)  # 3 significant digits
    assert dated.p99_ns == pytest.approx(4200 * MS, rel=0.002)
    assert rows["birdeye QPAGE-USD"].passed

    proxy = rows["jupiter QPOK-USD"].age
    assert proxy is not None
    assert (proxy.measure, proxy.samples, proxy.max_ns) == ("block", TICKS, 3 * S)
    assert proxy.p50_ns == pytest.approx(1 * S, rel=0.002)
    assert proxy.p99_ns == pytest.approx(3 * S, rel=0.002)

    fresh = rows["jupiter QPHOLE-USD"].age  # a new block every tick: never stood still
    assert fresh is not None
    assert (fresh.measure, fresh.samples, fresh.max_ns) == ("block", TICKS - 11, 0)
    assert rows["jupiter QPDUP-USD"].age is None  # neither dated nor with a block


def test_a_range_that_starts_before_the_poller_ran(stored: QuestDBEndpoints) -> None:
    early = D - 30 * S
    strict = _rows(stored, early, END)
    assert strict["jupiter QPOK-USD"].missed == 30
    assert _ranges(strict["jupiter QPOK-USD"]) == [(-30, -1, 30)]

    lenient = _rows(stored, early, END, from_first_tick=True)
    assert lenient["jupiter QPOK-USD"].span.start_ns == D  # the source's first stored tick
    assert lenient["jupiter QPOK-USD"].missed == 0
    assert lenient["jupiter QPOK-USD"].passed
    # QPHOLE's own first tick is later: the source's first tick counts, so 0-1 stay missed
    assert _ranges(lenient["jupiter QPHOLE-USD"])[0] == (0, 1, 2)
    assert lenient["jupiter QPNONE-USD"].missed == TICKS
    assert lenient["birdeye QPAGE-USD"].missed == 0


def test_ticks_not_yet_due_are_not_expected(stored: QuestDBEndpoints) -> None:
    # at D + 100 s with a 2 s deadline and 5 s grace the last due tick is D + 93 s
    rows = _rows(stored, D, END, now_ns=D + 100 * S, grace_ns=5 * S)
    complete = rows["jupiter QPOK-USD"]
    assert (complete.expected, complete.present, complete.missed) == (94, 94, 0)
    assert _ranges(rows["jupiter QPHOLE-USD"]) == [(0, 1, 2), (10, 12, 3), (30, 30, 1)]


def test_more_holes_than_listed_are_counted(stored: QuestDBEndpoints) -> None:
    with QualityQueries.connect(stored.pg_url, environ={}) as hot:
        span = _rows(stored, D, END)["jupiter QPHOLE-USD"].span
        holes = hot.holes("jupiter", "QPHOLE-USD", span, limit=1)
    assert holes.pairs == ((tick(9), tick(13)),)
    assert holes.total == 2


def test_the_report_filters_by_source_and_fails_on_a_missed_tick(
    stored: QuestDBEndpoints,
) -> None:
    inputs = ReportInputs(0.99, expected=[("binance", "QP-USDT")], polled=[*JUPITER, *BIRDEYE])
    with QualityQueries.connect(stored.pg_url, environ={}) as hot:
        by_source = collect(hot, D, END, inputs, exchange="birdeye")
        by_symbol = collect(hot, D, END, inputs, symbol="QPOK-USD")
        by_exchange = collect(hot, D, END, inputs, exchange="binance")
        everything = collect(hot, D, END, inputs)
    assert by_source.instruments == ()
    assert [(p.source, p.symbol) for p in by_source.polled] == [("birdeye", "QPAGE-USD")]
    assert by_source.passed
    assert [p.symbol for p in by_symbol.polled] == ["QPOK-USD"]
    assert by_symbol.passed
    assert by_exchange.polled == ()
    assert [(p.source, p.symbol) for p in everything.failing_polled] == [
        ("jupiter", "QPHOLE-USD"),
        ("jupiter", "QPDUP-USD"),
        ("jupiter", "QPNONE-USD"),
    ]
    assert not everything.passed


# --- the command ------------------------------------------------------------------------------

RANGE = ("--since", "2012-03-02T00:00:00Z", "--until", "2012-03-02T00:02:00Z")


def _config(tmp_path: Path) -> Path:
    """The repository's configuration with jupiter polling the QP tokens at 1 s."""
    settings = yaml.safe_load(CONFIG_FILE.read_text())
    settings["sources"]["jupiter"] |= {"cadence_s": 1, "max_rps": 1, "symbols": MINTS}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def _cli(questdb: QuestDBEndpoints, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETSTREAM_", "QDB_"))}
    env |= {
        "MARKETSTREAM_CONFIG": str(_config(tmp_path)),
        "MARKETSTREAM_ENDPOINTS__QUESTDB_PG": questdb.pg_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "marketstream", "quality", "report", *RANGE, *args,
         "--ingest-metrics", f"127.0.0.1:{process.free_port()}", "--state-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=180,
    )  # fmt: skip


def test_the_configured_tokens_in_process(stored: QuestDBEndpoints, tmp_path: Path) -> None:
    """What an integration test of the poller calls: the section alone, from the config."""
    config = load_config(_config(tmp_path), environ={})
    with QualityQueries.connect(stored.pg_url, environ={}) as hot:
        rows = polled_completeness(hot, config, D - 30 * S, END, from_first_tick=True)
        late = polled_completeness(hot, config, D, END, now_ns=END + 2 * S, symbol="QPOK-USD")
    assert [(r.symbol, r.missed, r.duplicates) for r in rows] == [
        ("QPOK-USD", 0, 0),
        ("QPHOLE-USD", 11, 0),
        ("QPDUP-USD", 0, 3),
        ("QPNONE-USD", TICKS, 0),
    ]
    # 2 s after the range, with a 1 s cadence's 2 s deadline and 5 s grace, the last due tick
    # is END - 5 s: the 4 after it are not expected yet
    (complete,) = late
    assert (complete.expected, complete.missed) == (TICKS - 4, 0)


def test_cli_table_of_a_source_exits_1_on_missed_ticks(
    stored: QuestDBEndpoints, tmp_path: Path
) -> None:
    result = _cli(stored, tmp_path, "--exchange", "jupiter")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["source", "symbol", "cadence", "expected"]
    complete = lines[1].split()
    assert complete[:8] == ["jupiter", "QPOK-USD", "1s", "120", "120", "0", "0", "0"]
    assert complete[-3:] == ["3000.0", "block", "ok"]  # the max is exact, p50/p99 approximate
    assert lines[2].split()[:8] == ["jupiter", "QPHOLE-USD", "1s", "120", "109", "11", "0", "4"]
    assert lines[3].split()[5:7] == ["0", "3"]  # QPDUP: no tick missed, 3 duplicates
    assert lines[4].split()[3:6] == ["120", "0", "120"]  # QPNONE
    assert (
        "jupiter QPHOLE-USD: missed ticks: 2012-03-02T00:00:00Z..00:00:01Z (2), "
        "2012-03-02T00:00:10Z..00:00:12Z (3), 2012-03-02T00:00:30Z (1), "
        "2012-03-02T00:01:55Z..00:01:59Z (5)"
    ) in lines
    assert lines[-1] == (
        "3 of 4 polled tokens of 1 source missed ticks or hold duplicates: "
        "jupiter QPHOLE-USD (11 missed), jupiter QPDUP-USD (0 missed, 3 duplicates), "
        "jupiter QPNONE-USD (120 missed)"
    )
    assert "exchange" not in lines[0]  # no trades table for a source


def test_cli_json_of_a_complete_token_exits_0(stored: QuestDBEndpoints, tmp_path: Path) -> None:
    early = ("--since", "2012-03-01T23:59:00Z")  # a minute before the first tick...
    strict = _cli(stored, tmp_path, "--symbol", "QPOK-USD", "--format", "json", *early)
    assert strict.returncode == 1, strict.stderr
    (row,) = orjson.loads(strict.stdout)["polled"]
    assert (row["missed"], row["missed_ranges"][0]["ticks"]) == (60, 60)

    lenient = _cli(
        stored, tmp_path, "--symbol", "QPOK-USD", "--format", "json", *early, "--from-first-tick"
    )  # ...not blamed with --from-first-tick
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    body = orjson.loads(lenient.stdout)
    assert body["passed"] is True
    assert body["instruments"] == []
    assert body["polled_from_first_tick"] is True
    (row,) = body["polled"]
    assert row["first_tick"] == "2012-03-02T00:00:00.000000000Z"
    assert (row["expected"], row["present"], row["missed"], row["duplicates"]) == (120, 120, 0, 0)
    assert row["missed_ranges"] == []
    assert row["age"]["measure"] == "block"
    assert row["age"]["max_ms"] == 3000.0


# --- the API ----------------------------------------------------------------------------------


def test_api_quality_carries_the_polled_section_as_the_cli(
    stored: QuestDBEndpoints, redis_url: str, tmp_path: Path
) -> None:
    """`/v1/quality` of a real serve: a source's name as `exchange`, `from_first_tick` as
    `--from-first-tick`, the polled rows field for field as `quality report --format json`."""
    early = ("--since", "2012-03-01T23:59:00Z")  # a minute before the first tick
    environ = {
        "MARKETSTREAM_CONFIG": str(_config(tmp_path)),
        "MARKETSTREAM_ENDPOINTS__QUESTDB_PG": stored.pg_url,
        "MARKETSTREAM_ENDPOINTS__REDIS": redis_url,
    }
    params = {"since": early[1], "until": RANGE[3], "exchange": "jupiter"}
    with (
        running_serve(environ, tmp_path / "serve-state") as (url, lines),
        httpx.Client(base_url=url, timeout=120) as api,
    ):
        answers = {
            lenient: api.get("/v1/quality", params=params | {"from_first_tick": str(lenient)})
            for lenient in (False, True)
        }
        refused = api.get("/v1/quality", params=params | {"exchange": "nyse"})
    assert not [line for line in lines if "Traceback" in line], "".join(lines)
    assert refused.status_code == 400, refused.text
    for lenient, answer in answers.items():
        assert answer.status_code == 200, answer.text
        body = answer.json()
        flag = ("--from-first-tick",) if lenient else ()
        cli = _cli(stored, tmp_path, "--exchange", "jupiter", "--format", "json", *early, *flag)
        assert cli.returncode == 1, cli.stderr  # QPHOLE, QPDUP and QPNONE fail either way
        expected = orjson.loads(cli.stdout)
        assert set(body) == set(expected)
        for field in ("since", "until", "passed", "instruments", "polled_from_first_tick"):
            assert body[field] == expected[field], field
        assert body["polled"] == expected["polled"]
        assert body["polled_from_first_tick"] is lenient
        assert [row["symbol"] for row in body["polled"]] == [f"{t}-USD" for t in MINTS]
        complete = body["polled"][0]
        assert complete["missed"] == (0 if lenient else 60)
        assert complete["first_tick"] == (
            "2012-03-02T00:00:00.000000000Z" if lenient else "2012-03-01T23:59:00.000000000Z"
        )
