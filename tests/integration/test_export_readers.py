"""The real libraries read our exports: Freqtrade (its loaders, and `freqtrade backtesting`)
and VectorBT (`pd.read_parquet` + `vbt.Portfolio`), each in its own venv, which
`make test-exports` builds and names in MARKETSTREAM_TEST_FREQTRADE_PYTHON and
MARKETSTREAM_TEST_VECTORBT_PYTHON. The data spans the three tiers (`export_bed`).
NautilusTrader's reads are in test_export_nautilus.py (it runs in .venv-nautilus)."""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from marketstream.tiers.days import NS_PER_DAY, day_start_ns
from tests.integration.export_bed import PERP, SPOT, ExportBed
from tests.integration.test_export import expected_bars, export, ints

pytestmark = [pytest.mark.integration, pytest.mark.exports]
READERS = Path(__file__).parent / "export_readers"


def library_python(name: str) -> str:
    variable = f"MARKETSTREAM_TEST_{name.upper()}_PYTHON"
    python = os.environ.get(variable)
    assert python, f"{variable} is not set: run these tests with `make test-exports`"
    return python


def run_reader(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    python = library_python(name)
    done = subprocess.run([python, *args], capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_freqtrade_loads_every_bar_and_trade(export_bed: ExportBed, tmp_path: Path) -> None:
    datadir = tmp_path / "user_data" / "data" / "binance"
    export(export_bed, "freqtrade", ("candles", "trades"), datadir)
    found: dict[str, Any] = orjson.loads(
        run_reader("freqtrade", str(READERS / "freqtrade_read.py"), str(datadir)).stdout
    )
    for name, symbol in (("spot", SPOT), ("futures", PERP)):
        bars = expected_bars(export_bed, symbol)
        opens = [ts // 1_000_000 for ts in ints(bars)]
        assert found[f"{name}_ohlcv"]["rows"] == bars.num_rows
        assert found[f"{name}_ohlcv"]["first"] == opens[0]
        assert found[f"{name}_ohlcv"]["last"] == opens[-1]
        assert found[f"{name}_ohlcv"]["close"] == pytest.approx(bars.column("close").to_pylist())
        trades = export_bed.source["trades", symbol]
        times = [ts // 1_000_000 for ts in ints(trades)]
        assert found[f"{name}_trades"]["rows"] == trades.num_rows
        assert found[f"{name}_trades"]["first"] == times[0]
        assert found[f"{name}_trades"]["last"] == times[-1]
        assert found[f"{name}_trades"]["ids"] == trades.column("trade_id").to_pylist()[:3]
        assert found[f"{name}_trades"]["sides"] == ["buy", "sell"]
    assert found["available"] == ["BTC/USDT 1m spot", "BTC/USDT:USDT 1m futures"]


def test_freqtrade_backtesting_runs_over_the_export(export_bed: ExportBed, tmp_path: Path) -> None:
    userdir = tmp_path / "user_data"
    datadir = userdir / "data" / "binance"
    export(export_bed, "freqtrade", ("candles",), datadir, symbols=(SPOT,))
    config = {
        "exchange": {"name": "binance", "pair_whitelist": ["BTC/USDT"], "pair_blacklist": []},
        "stake_currency": "USDT",
        "stake_amount": 100,
        "dry_run": True,
        "dry_run_wallet": 1000,
        "max_open_trades": 1,
        "timeframe": "1m",
        "trading_mode": "spot",
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same"},
        "exit_pricing": {"price_side": "same"},
    }
    (tmp_path / "config.json").write_bytes(orjson.dumps(config))
    argv = [str(READERS / "freqtrade_backtest.py"), "backtesting", "--userdir", str(userdir)]
    argv += ["--config", str(tmp_path / "config.json"), "--strategy", "SmaCross"]
    argv += ["--strategy-path", str(READERS / "strategies"), "--datadir", str(datadir)]
    results = tmp_path / "results"
    results.mkdir()
    argv += ["--export", "trades", "--backtest-directory", str(results), "--cache", "none"]
    run_reader("freqtrade", *argv)
    (archive,) = results.glob("backtest-result-*.zip")
    with zipfile.ZipFile(archive) as packed:
        (name,) = [
            n for n in packed.namelist() if re.fullmatch(r"backtest-result-[\d_-]+\.json", n)
        ]
        report = orjson.loads(packed.read(name))["strategy"]["SmaCross"]
    opens = [ts // 1_000_000 for ts in ints(expected_bars(export_bed, SPOT))]
    # freqtrade starts after its 20 startup bars (gaps filled in) and ends at the last bar
    assert report["backtest_end_ts"] == opens[-1]
    assert opens[0] < report["backtest_start_ts"] < opens[-1]
    assert report["total_trades"] > 0  # it traded over the exported bars


def test_vectorbt_reads_the_wide_frame_and_backtests(export_bed: ExportBed, tmp_path: Path) -> None:
    export(export_bed, "vectorbt", ("candles",), tmp_path)
    path = tmp_path / "binance_ohlcv_1m.parquet"
    found: dict[str, Any] = orjson.loads(
        run_reader("vectorbt", str(READERS / "vectorbt_read.py"), str(path)).stdout
    )
    assert found["symbols"] == [SPOT, PERP]
    assert found["tz"] == "UTC"
    for symbol in (SPOT, PERP):
        bars = expected_bars(export_bed, symbol)
        assert found["bars"][symbol] == bars.num_rows
        assert found["data_close_rows"][symbol] == bars.num_rows
        assert found["first"][symbol] == ints(bars)[0]
        assert found["last"][symbol] == ints(bars)[-1]
        assert found["orders"][symbol] > 0
    assert found["returns_finite"]
    assert found["shape"][1] == 10  # 5 fields x 2 symbols
    assert day_start_ns(export_bed.first_day) <= min(found["first"].values())
    assert max(found["last"].values()) < day_start_ns(export_bed.last_day) + NS_PER_DAY
