"""The quality report and the backfill against the real QuestDB and Redis.

The trades are on 2012-03-01 for instruments no other test writes (`QUAL*`), so nothing
else can change the figures; the day's partition is dropped afterwards, as the other modules
count whole tables. The exchange of the backfill is a test-local Binance REST stand-in that
pages `aggTrades` as Binance does (and answers 429 once): it is the exchange, not one of our
services.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import msgspec.structs
import orjson
import pytest
import redis.asyncio
from questdb import Sender

from marketstream.ingest.metrics import IngestMetrics
from marketstream.metrics_server import bound_port, serve_metrics
from marketstream.quality.dead_letters import count_dead_letters, read_dead_letters
from marketstream.quality.gaps import IdRange, Interval
from marketstream.quality.report import QualityQueries, ReportInputs, collect
from marketstream.schemas.records import Trade
from marketstream.services import process
from marketstream.tiers import questdb_tables
from marketstream.tiers.questdb_rows import write_rows
from marketstream.tiers.redis_bus import DLQ_STREAM, connect, dead_letter_fields
from tests.integration.endpoints import REPO, QuestDBEndpoints

pytestmark = pytest.mark.integration

S = 10**9
MS = 10**6
M = 60 * S
D = 1_330_560_000 * S  # 2012-03-01T00:00:00Z
DAY = "2012-03-01"
END = D + 120 * M  # the range: two hours
RANGE = ("--since", "2012-03-01T00:00:00Z", "--until", "2012-03-01T02:00:00Z")
LATENCY = 5 * MS  # exchange time to receive time of every stored trade...
SLOW = 900 * MS  # ...but one
WAIT_S = 60.0


def truth(exchange: str, symbol: str, first_id: int, *, uuid_ids: bool = False) -> list[Trade]:
    """Three trades a minute for the two hours, ids one by one, as the exchange has them."""
    return [
        Trade(
            exchange,
            symbol,
            D + i * 20 * S + 7 * MS,
            D + i * 20 * S + 7 * MS + LATENCY,
            f"{first_id + i:08x}-q" if uuid_ids else str(first_id + i),
            100.0 + (i % 8) / 4,
            0.5,
            "buy" if i % 3 else "sell",
        )
        for i in range(360)
    ]


def minute_of(trade: Trade) -> int:
    return (trade.ts - D) // M


# binance QUAL-USDT: minutes 30-32 lost (9 ids), and one trade in minute 50 (an id alone).
BINANCE = truth("binance", "QUAL-USDT", 1000)
LOST_ID = str(1000 + 50 * 3 + 1)
BINANCE_STORED = [t for t in BINANCE if not 30 <= minute_of(t) <= 32 and t.trade_id != LOST_ID]
BINANCE_STORED[10] = msgspec.structs.replace(
    BINANCE_STORED[10], recv_ts=BINANCE_STORED[10].ts + SLOW
)
COINBASE = truth("coinbase", "QUAL-USD", 70_000)  # complete
BYBIT = truth("bybit", "QUAL-USDT", 1, uuid_ids=True)
BYBIT_STORED = [t for t in BYBIT if minute_of(t) < 115]  # the feed stopped at 01:55
# binance QUALB-USDT, for the backfill: minutes 40-44 lost, and everything from 01:50 on.
BACKFILLED = truth("binance", "QUALB-USDT", 5000)
BACKFILLED_STORED = [t for t in BACKFILLED if not 40 <= minute_of(t) <= 44 and minute_of(t) < 110]


@pytest.fixture(scope="module")
def stored(questdb: QuestDBEndpoints) -> Iterator[QuestDBEndpoints]:
    """The stored trades written and applied; the day's partition dropped afterwards."""
    for statement in questdb_tables.create_all_sql():
        questdb.http.exec(statement)
    with Sender.from_conf(questdb.ilp_conf) as sender:
        write_rows(sender, [*BINANCE_STORED, *COINBASE, *BYBIT_STORED, *BACKFILLED_STORED])
        sender.flush()
    questdb.wait_applied(WAIT_S)
    yield questdb
    questdb.http.exec(f"ALTER TABLE trades DROP PARTITION LIST '{DAY}'")
    questdb.wait_applied(WAIT_S)


def _cli(
    questdb: QuestDBEndpoints,
    tmp_path: Path,
    *args: str,
    redis_url: str | None = None,
    environ: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETSTREAM_", "QDB_"))}
    env["MARKETSTREAM_ENDPOINTS__QUESTDB_PG"] = questdb.pg_url
    env["MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP"] = questdb.http_url
    if redis_url is not None:
        env["MARKETSTREAM_ENDPOINTS__REDIS"] = redis_url
    env |= environ or {}
    return subprocess.run(
        [sys.executable, "-m", "marketstream", *args, "--state-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def _nobody_listening() -> str:
    return f"127.0.0.1:{process.free_port()}"


# --- the report in-process ----------------------------------------------------------------------


def test_minutes_ids_and_freshness_of_each_instrument(stored: QuestDBEndpoints) -> None:
    with QualityQueries.connect(stored.pg_url, environ={}) as hot:
        report = collect(hot, D, END, ReportInputs(0.99), symbol="QUAL-USDT")
        coinbase = collect(hot, D, END, ReportInputs(0.99), exchange="coinbase")
    binance, bybit = report.instruments
    assert (binance.exchange, bybit.exchange) == ("binance", "bybit")

    assert binance.trades == len(BINANCE_STORED) == 350
    assert (binance.minutes.expected, binance.minutes.with_trades) == (120, 117)
    assert binance.minutes.missing == (Interval(D + 30 * M, D + 33 * M),)
    assert binance.completeness == pytest.approx(117 / 120)
    assert not binance.passed
    assert binance.ids is not None
    assert binance.ids.gaps is not None
    assert binance.ids.gaps.missing == (IdRange(1090, 1098), IdRange(1151, 1151))
    assert binance.ids.gaps.missing_ids == 10
    assert (binance.ids.gaps.lowest, binance.ids.gaps.highest) == (1000, 1359)
    assert binance.worst_freshness_ns == SLOW
    assert binance.p99_freshness_ns == pytest.approx(LATENCY, rel=0.01)
    assert binance.first_trade_ns == BINANCE[0].ts
    assert binance.last_trade_ns == BINANCE[-1].ts

    assert bybit.ids is None  # Bybit's ids are not sequential: nothing to say
    assert bybit.minutes.missing == (Interval(D + 115 * M, END),)  # the feed stopped
    assert bybit.completeness == pytest.approx(115 / 120)

    (complete,) = coinbase.instruments
    assert complete.passed
    assert complete.completeness == 1.0
    assert complete.ids is not None
    assert complete.ids.gaps is not None
    assert complete.ids.gaps.missing == ()
    assert coinbase.passed
    assert not report.passed


def test_configured_instruments_without_a_trade_count_as_missing(
    stored: QuestDBEndpoints,
) -> None:
    with QualityQueries.connect(stored.pg_url, environ={}) as hot:
        report = collect(
            hot,
            D,
            END,
            ReportInputs(0.5, expected=[("kraken", "QUAL-USD"), ("okx", "QUAL-USD")]),
            exchange="kraken",
        )
    (silent,) = report.instruments  # okx is filtered out
    assert (silent.exchange, silent.trades, silent.completeness) == ("kraken", 0, 0.0)
    assert silent.minutes.missing == (Interval(D, END),)
    assert not report.passed


# --- the command ---------------------------------------------------------------------------------


def test_cli_table_exits_1_below_the_threshold_and_0_above(
    stored: QuestDBEndpoints, tmp_path: Path
) -> None:
    metrics = ("--ingest-metrics", _nobody_listening())
    failing = _cli(stored, tmp_path, "quality", "report", *RANGE, "--symbol", "QUAL-USDT", *metrics)
    assert failing.returncode == 1, failing.stderr
    lines = failing.stdout.splitlines()
    assert lines[0].split()[:3] == ["exchange", "symbol", "trades"]
    assert lines[1].split() == [
        "binance", "QUAL-USDT", "350", "120", "3", "97.50%", "2", "10", "n/a", "0", "900.0",
        "5.0", "FAIL",
    ]  # fmt: skip
    assert lines[2].split()[:8] == ["bybit", "QUAL-USDT", "345", "120", "5", "95.83%", "-", "-"]
    text = failing.stdout
    assert (
        "binance QUAL-USDT: minutes without a trade: 2012-03-01T00:30Z..2012-03-01T00:33Z" in text
    )
    assert "binance QUAL-USDT: trade ids missing: 1090-1098, 1151" in text
    assert "note: dead letters n/a: no redis endpoint" in text
    assert "note: book counters n/a from http://" in text
    assert lines[-1] == "2 of 2 instruments below 99.00%: binance QUAL-USDT, bybit QUAL-USDT"

    lenient = _cli(
        stored, tmp_path, "quality", "report", *RANGE, "--symbol", "QUAL-USDT",
        "--min-completeness", "95%", *metrics,
    )  # fmt: skip
    assert lenient.returncode == 0, lenient.stderr
    assert lenient.stdout.splitlines()[-1] == "2 instruments, all at or above 95.00% completeness"


def test_cli_json_is_one_document(stored: QuestDBEndpoints, tmp_path: Path) -> None:
    result = _cli(
        stored, tmp_path, "quality", "report", *RANGE, "--exchange", "coinbase",
        "--symbol", "QUAL-USD", "--format", "json", "--ingest-metrics", _nobody_listening(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = orjson.loads(result.stdout)
    assert body["passed"] is True
    assert (body["since"], body["until"]) == (
        "2012-03-01T00:00:00.000000000Z",
        "2012-03-01T02:00:00.000000000Z",
    )
    (row,) = body["instruments"]
    assert row["exchange"] == "coinbase"
    assert row["trades"] == 360
    assert (row["minutes_expected"], row["minutes_missing"], row["completeness"]) == (120, 0, 1.0)
    assert row["trade_ids"] == {
        "first": 70_000, "last": 70_359, "missing": 0, "ranges": [], "cut_short": False
    }  # fmt: skip
    assert row["book"] is None
    assert row["freshness_worst_ms"] == 5.0


def test_cli_unreachable_questdb_is_one_line_and_exit_2(
    stored: QuestDBEndpoints, tmp_path: Path
) -> None:
    url = f"postgresql://127.0.0.1:{process.free_port()}/qdb"
    result = _cli(
        stored, tmp_path, "quality", "report", *RANGE,
        "--ingest-metrics", _nobody_listening(),
        environ={"MARKETSTREAM_ENDPOINTS__QUESTDB_PG": url},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"marketstream: error: QuestDB PG wire at {url} unreachable")
    assert len(result.stderr.splitlines()) == 1


# --- dead letters and book resyncs --------------------------------------------------------------


@pytest.fixture
async def dead_letters(client: redis.asyncio.Redis) -> AsyncIterator[redis.asyncio.Redis]:
    """md:dlq (emptied by `client`) with 2012 entries: four in the range, one after it."""
    bad = orjson.dumps({"type": "trade", "exchange": "binance", "symbol": "QUAL-USDT"})
    letters = [
        (D + 5 * S, "binance", "price -1.0 is not a positive finite number", bad),
        (D + 6 * S, "binance", "size 0.0 is not a positive finite number", bad),
        (D + 7 * S, "binance", "binance: unknown event type 'x'", None),
        (D + 90 * M, "coinbase", "coinbase: not JSON: 'x'", None),
        (END + S, "binance", "price 0.0 is not a positive finite number", bad),
    ]
    for at, exchange, reason, record in letters:
        fields = dead_letter_fields(
            exchange=exchange, reason=reason, frame="{}", recv_ts=at, record=record
        )
        await client.xadd(DLQ_STREAM, fields, id=f"{at // MS}-0")  # type: ignore[arg-type]
    yield client
    await client.delete(DLQ_STREAM)


async def test_dead_letters_in_the_range(
    stored: QuestDBEndpoints,
    dead_letters: redis.asyncio.Redis,
    redis_url: str,
    tmp_path: Path,
) -> None:
    sync = connect(redis_url)
    try:
        counts = count_dead_letters(read_dead_letters(sync, D, END))
        assert (
            count_dead_letters(read_dead_letters(sync, END, END + M)).exchanges["binance"].total
            == 1
        )
    finally:
        sync.close()
    assert {k: (v.total, v.reasons) for k, v in counts.exchanges.items()} == {
        "binance": (3, {"price": 1, "size": 1, "unknown": 1}),
        "coinbase": (1, {"not": 1}),
    }
    assert counts.instruments == {("binance", "QUAL-USDT"): 2}

    result = await asyncio.to_thread(
        _cli, stored, tmp_path, "quality", "report", *RANGE, "--symbol", "QUAL-USDT",
        "--format", "json", "--ingest-metrics", _nobody_listening(), redis_url=redis_url,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    body = orjson.loads(result.stdout)
    assert body["dead_letters"] == [
        {"exchange": "binance", "total": 3, "reasons": {"price": 1, "size": 1, "unknown": 1}},
        {"exchange": "coinbase", "total": 1, "reasons": {"not": 1}},
    ]
    assert [(r["exchange"], r["dead_letters"]) for r in body["instruments"]] == [
        ("binance", 2),
        ("bybit", 0),
    ]


async def test_book_resyncs_from_the_ingest_metrics(
    stored: QuestDBEndpoints, tmp_path: Path
) -> None:
    metrics = IngestMetrics()
    metrics.gaps.labels(exchange="binance", symbol="QUAL-USDT").inc(2)
    metrics.resyncs.labels(exchange="binance", symbol="QUAL-USDT").inc(3)
    metrics.checksum_failures.labels(exchange="bybit", symbol="QUAL-USDT").inc(1)
    metrics.resyncs.labels(exchange="bybit", symbol="QUAL-USDT").inc(1)
    server = await serve_metrics(metrics.registry, lambda: (True, {}), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(server)}/metrics"
    absent = _nobody_listening()
    try:
        result = await asyncio.to_thread(
            _cli, stored, tmp_path, "quality", "report", *RANGE, "--symbol", "QUAL-USDT",
            "--format", "json", "--ingest-metrics", url,
            "--ingest-metrics", absent,
        )  # fmt: skip
    finally:
        server.close()
        await server.wait_closed()
    body = orjson.loads(result.stdout)
    assert [row["book"] for row in body["instruments"]] == [
        {"gaps": 2, "resyncs": 3, "checksum_failures": 0},
        {"gaps": 0, "resyncs": 1, "checksum_failures": 1},
    ]
    assert body["book_counters_from"] == [url]
    assert any(
        note.startswith(f"book counters n/a from http://{absent}/") for note in body["notes"]
    )


# --- backfill from the exchange ------------------------------------------------------------------


class FakeBinance(BaseHTTPRequestHandler):
    """GET /api/v3/aggTrades as Binance pages it; 429 with Retry-After on the first request."""

    trades: ClassVar[list[dict[str, Any]]] = []
    requests: ClassVar[list[dict[str, str]]] = []
    throttled: ClassVar[bool] = False

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        type(self).requests.append(params)
        if not type(self).throttled:
            type(self).throttled = True
            self._send(429, {"code": -1003, "msg": "Too many requests"}, {"Retry-After": "1"})
            return
        if parts.path != "/api/v3/aggTrades" or params.get("symbol") != "QUALBUSDT":
            self._send(400, {"code": -1121, "msg": "Invalid symbol."})
            return
        limit = min(int(params.get("limit", "500")), 1000)
        if "fromId" in params:
            found = [t for t in self.trades if t["a"] >= int(params["fromId"])]
        else:
            start, end = int(params["startTime"]), int(params["endTime"])
            if end - start >= 3_600_000:
                self._send(
                    400, {"code": -1127, "msg": "More than 1 hours between startTime and endTime."}
                )
                return
            found = [t for t in self.trades if start <= t["T"] <= end]
        self._send(200, found[:limit], {"X-MBX-USED-WEIGHT-1M": str(4 * len(self.requests))})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def agg_trade(trade: Trade) -> dict[str, Any]:
    """What Binance's REST API returns for a trade (prices as text, as Binance sends them)."""
    return {
        "a": int(trade.trade_id), "p": repr(trade.price), "q": repr(trade.size),
        "f": int(trade.trade_id), "l": int(trade.trade_id), "T": trade.ts // MS,
        "m": trade.side == "sell", "M": True,
    }  # fmt: skip


@pytest.fixture
def exchange() -> Iterator[str]:
    FakeBinance.trades = [agg_trade(t) for t in BACKFILLED]
    FakeBinance.requests = []
    FakeBinance.throttled = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeBinance)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _backfill_env(rest_url: str) -> dict[str, str]:
    return {
        "MARKETSTREAM_EXCHANGES__BINANCE__REST_URL": rest_url,
        # 2012 is far past the 7-day hot horizon that backfill keeps to: widen it here.
        "MARKETSTREAM_HORIZONS__HOT_DAYS": "10000",
        "MARKETSTREAM_HORIZONS__WARM_DAYS": "20000",
        "MARKETSTREAM_QUALITY__BACKFILL_WEIGHT_SHARE": "1",
    }


def _stored_trades(questdb: QuestDBEndpoints, symbol: str) -> list[Trade]:
    with QualityQueries.connect(questdb.pg_url, environ={}) as hot:
        return hot.trades("binance", symbol, D, END, limit=10_000)


def test_backfill_fills_the_gaps_and_the_report_then_passes(
    stored: QuestDBEndpoints, exchange: str, tmp_path: Path
) -> None:
    env = _backfill_env(exchange)
    base = ("backfill", "--exchange", "binance", "--symbol", "QUALB-USDT", *RANGE)
    report = ("quality", "report", *RANGE, "--symbol", "QUALB-USDT", "--ingest-metrics",
              _nobody_listening())  # fmt: skip

    before = _cli(stored, tmp_path, *report, environ=env)
    assert before.returncode == 1, before.stderr
    assert before.stdout.splitlines()[1].split()[3:8] == ["120", "15", "87.50%", "1", "15"]

    dry = _cli(stored, tmp_path, *base, "--dry-run", environ=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "binance QUALB-USDT 2012-03-01T00:00:00.000000000Z to 2012-03-01T02:00:00.000000000Z: "
        "2 to fetch (dry run: nothing fetched)",
        "  trade ids 5120-5134 (missing ids)",
        f"  trades {_iso(BACKFILLED_STORED[-1].ts)} to 2012-03-01T02:00:00.000000000Z "
        "(no trade after the last stored one, ids from 5330)",
    ]
    assert FakeBinance.requests == []

    run = _cli(stored, tmp_path, *base, "--format", "json", environ=env)
    assert run.returncode == 0, run.stderr
    body = orjson.loads(run.stdout)
    assert body["written"] == len(BACKFILLED) - len(BACKFILLED_STORED) == 45
    assert body["rejected"] == 0
    assert body["already_stored"] == 1  # the last stored trade opens the tail's page
    assert body["retries"] == 1  # the 429, after its Retry-After
    assert body["waited_s"] >= 1.0
    assert body["after"] == {"completeness": 1.0, "minutes_missing": 0, "ids_missing": 0}
    assert FakeBinance.requests[0] == FakeBinance.requests[1]  # the throttled one, again
    assert all(r["symbol"] == "QUALBUSDT" for r in FakeBinance.requests)

    stored_now = _stored_trades(stored, "QUALB-USDT")
    assert [msgspec.structs.replace(t, recv_ts=0) for t in stored_now] == [
        msgspec.structs.replace(t, recv_ts=0) for t in BACKFILLED
    ]
    kept = {t.trade_id for t in stored_now if t.recv_ts - t.ts == LATENCY}
    assert kept == {t.trade_id for t in BACKFILLED_STORED}  # stored rows were not rewritten

    after = _cli(stored, tmp_path, *report, environ=env)
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.splitlines()[1].split()[3:8] == ["120", "0", "100.00%", "0", "0"]

    again = _cli(stored, tmp_path, *base, "--format", "json", environ=env)
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout)["tasks"] == []
    assert orjson.loads(again.stdout)["requests"] == 0


def test_backfill_names_the_exchange_error(
    stored: QuestDBEndpoints, exchange: str, tmp_path: Path
) -> None:
    FakeBinance.throttled = True
    result = _cli(
        stored, tmp_path, "backfill", "--exchange", "binance", "--symbol", "QUAL-USDT", *RANGE,
        environ=_backfill_env(exchange),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"marketstream: error: binance: {exchange}/api/v3/aggTrades answered HTTP 400: "
        '{"code":-1121,"msg":"Invalid symbol."}\n'
    )


def test_backfill_refuses_days_past_the_hot_horizon(
    stored: QuestDBEndpoints, exchange: str, tmp_path: Path
) -> None:
    env = _backfill_env(exchange)
    del env["MARKETSTREAM_HORIZONS__HOT_DAYS"], env["MARKETSTREAM_HORIZONS__WARM_DAYS"]
    result = _cli(
        stored, tmp_path, "backfill", "--exchange", "binance", "--symbol", "QUALB-USDT", *RANGE,
        environ=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "is older than the hot tier's horizon (7 days, horizons.hot_days)" in result.stderr
    assert FakeBinance.requests == []


def _iso(ns: int) -> str:
    from marketstream.query.hot_queries import format_ns  # noqa: PLC0415

    return format_ns(ns)
