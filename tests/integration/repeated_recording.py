"""A long Binance USD-M recording: the shipped one repeated, each copy a new stretch of market.

Each copy's exchange times move on by whole minutes past the previous copy's, aggregate trade
ids past the previous copy's, and depth update ids per symbol by exactly what keeps `pu`
continuous across copies, so no copy is a duplicate that QuestDB's dedup keys would fold
into an earlier one: every record published becomes one row (candles: one per bar). Used by
the supervised-pipeline tests and `bench/pipeline.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from marketstream.replay.recording_format import RecordedFrame, read_recording

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Repeated:
    frames: int  # WebSocket frames written
    candle_bars: int  # distinct (symbol, interval, open time): the candle rows QuestDB keeps


def _shift_data(data: dict[str, Any], n: int, span_ms: int, trade_span: int, depth: int) -> None:
    for key in ("E", "T"):
        if isinstance(data.get(key), int):
            data[key] += n * span_ms
    kind = data.get("e")
    if kind == "aggTrade":
        for key in ("a", "f", "l"):
            data[key] += n * trade_span
    elif kind == "depthUpdate":
        for key in ("U", "u", "pu"):
            data[key] += n * depth
    elif kind == "bookTicker" or ("u" in data and "b" in data):
        data["u"] += n * depth
    elif kind == "kline":
        k = data["k"]
        k["t"] += n * span_ms
        k["T"] += n * span_ms


def repeat_recording(source: Path, target: Path, repeats: int) -> Repeated:
    """Write `repeats` shifted copies of `source` (a Binance USD-M recording) to `target`."""
    recorded = list(read_recording(source))
    frames = [f for f in recorded if not f.is_rest]
    parsed = [orjson.loads(f.frame) for f in frames]
    datas = [p.get("data", p) for p in parsed]
    times = [d["E"] for d in datas if isinstance(d.get("E"), int)]
    span_ms = ((max(times) - min(times)) // MINUTE_MS + 2) * MINUTE_MS
    agg = [d["a"] for d in datas if d.get("e") == "aggTrade"]
    trade_span = max(agg) - min(agg) + 1 if agg else 0
    first_pu: dict[str, int] = {}
    last_u: dict[str, int] = {}
    for d in datas:
        if d.get("e") == "depthUpdate":
            first_pu.setdefault(d["s"], d["pu"])
            last_u[d["s"]] = d["u"]
    depth_span = {s: max(last_u[s] - first_pu[s], 1) for s in last_u}
    recv_span = frames[-1].recv_ns - frames[0].recv_ns + 1
    bars = {(d["s"], d["k"]["i"], d["k"]["t"]) for d in datas if d.get("e") == "kline"}
    with target.open("wb") as out:
        for f in recorded:
            if f.is_rest:
                out.write(f.to_json_line())
        for n in range(repeats):
            for f, p in zip(frames, orjson.loads(orjson.dumps(parsed)), strict=True):
                data = p.get("data", p)
                symbol_span = depth_span.get(data.get("s", ""), 1)
                _shift_data(data, n, span_ms, trade_span, symbol_span)
                shifted = RecordedFrame(
                    f.recv_ns + n * recv_span, f.exchange, f.url, orjson.dumps(p).decode()
                )
                out.write(shifted.to_json_line())
    return Repeated(frames=len(frames) * repeats, candle_bars=len(bars) * repeats)
