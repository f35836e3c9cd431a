"""Whole processes, as the issue measures: `marketstream normalize` against cryptofeed's
`playback()` on the same frames, each a fresh Python process from start to exit.

The frames are those `bench/cryptofeed_compare.py` compares in one process, repeated to at
least LONG_FRAMES. Each side reads them from a file in its own capture format:

- ours: a recording (JSON lines; receive times shifted per copy), normalized by
  `python -m marketstream normalize` with its JSON lines written to /dev/null;
- cryptofeed: its raw capture files (`<feed>.ws.1.0`: `<receive time>: <frame>` lines; a
  `<feed>.1` file with the symbol list its feed reads over REST, then the subscription),
  played back by `cryptofeed.raw_data_collection.playback` with its counting callbacks.

Both include interpreter start-up and imports (measured apart on a one-frame file, and
reported), file reading and parsing; ours also encodes and writes every record, which
playback does not. Best of PROCESS_REPEATS, the sides interleaved. Counts checked: our
records by kind equal cryptofeed's callbacks by channel, or the result says where they differ.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from bench.ingest import write_repeated
from marketstream.replay.recording_format import RecordedFrame

LONG_FRAMES: Final = 300_000
PROCESS_REPEATS: Final = 2
TIMEOUT_S: Final = 300
ROOT: Final = Path(__file__).resolve().parents[1]
# cryptofeed's channel -> our record type, for the counts check
CHANNEL_KIND: Final = {"trades": "trade", "ticker": "quote", "candles": "candle", "l2_book": "book"}
PLAYBACK: Final = (
    "import json, sys\n"
    "from cryptofeed.raw_data_collection import playback\n"
    "print(json.dumps(playback(sys.argv[1], sys.argv[2:])))\n"
)
_COUNTS: Final = re.compile(r"(\w+) (\d+)")


def compare(
    feed_id: str,
    exchange: str,
    frames: Sequence[RecordedFrame],
    symbol_data: Any,
    subscription: dict[str, list[str]],
) -> dict[str, Any]:
    """Both sides as processes on `frames` repeated to >= LONG_FRAMES; `symbol_data` is what
    cryptofeed's feed would read from the exchange's symbol endpoint, `subscription` its
    channels and symbols (cryptofeed's names)."""
    copies = -(-LONG_FRAMES // len(frames))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ours_file = root / "recording.jsonl"
        write_repeated(frames, ours_file, copies)
        _write_cryptofeed(
            root,
            feed_id,
            frames=frames,
            copies=copies,
            symbol_data=symbol_data,
            subscription=subscription,
        )
        one = root / "one"
        one.mkdir()
        write_repeated(frames[:1], one / "recording.jsonl", 1)
        _write_cryptofeed(
            one,
            feed_id,
            frames=frames[:1],
            copies=1,
            symbol_data=symbol_data,
            subscription=subscription,
        )
        ours_start = _ours(one / "recording.jsonl", exchange)[0]
        theirs_start = _cryptofeed(one, feed_id)[0]
        ours_s = theirs_s = float("inf")
        ours_counts: dict[str, int] = {}
        callbacks: dict[str, int] = {}
        for _ in range(PROCESS_REPEATS):
            seconds, ours_counts = _ours(ours_file, exchange)
            ours_s = min(ours_s, seconds)
            seconds, callbacks = _cryptofeed(root, feed_id)
            theirs_s = min(theirs_s, seconds)
    total = len(frames) * copies
    ratio = round(theirs_s / ours_s, 2)
    return {
        "frames": total,
        "repeats": PROCESS_REPEATS,
        "ours": {
            "command": f"python -m marketstream normalize --exchange {exchange} <file>",
            "seconds": round(ours_s, 3),
            "frames_per_s": round(total / ours_s),
            "startup_s": round(ours_start, 3),
            "records_by_kind": ours_counts,
        },
        "cryptofeed": {
            "command": f"cryptofeed.raw_data_collection.playback({feed_id!r}, <files>)",
            "seconds": round(theirs_s, 3),
            "frames_per_s": round(total / theirs_s),
            "startup_s": round(theirs_start, 3),
            "callbacks": callbacks,
        },
        "ratio_frames_per_s": ratio,
        "counts": _counts_check(ours_counts, callbacks),
    }


def _write_cryptofeed(
    directory: Path,
    feed_id: str,
    *,
    frames: Sequence[RecordedFrame],
    copies: int,
    symbol_data: Any,
    subscription: dict[str, list[str]],
) -> None:
    """playback's files. It reads every line of the non-ws file as `<label>: <json>` into
    the answers its symbol requests get, in order (the subscription line too, so it comes
    last), and takes the line holding `configuration` as the subscription."""
    (directory / f"{feed_id}.1").write_text(
        f"symbols: {json.dumps(symbol_data)}\nconfiguration: {json.dumps(subscription)}\n"
    )
    lines = [f"{f.recv_ns / 1e9}: {f.frame}\n" for f in frames]
    with (directory / f"{feed_id}.ws.1.0").open("w") as out:
        for _ in range(copies):
            out.writelines(lines)


def _ours(path: Path, exchange: str) -> tuple[float, dict[str, int]]:
    argv = [sys.executable, "-m", "marketstream", "normalize", "--exchange", exchange, str(path)]
    start = time.perf_counter()
    done = subprocess.run(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        timeout=TIMEOUT_S,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"marketstream normalize exited {done.returncode}: {_last(done.stderr)}")
    first = done.stderr.splitlines()[0]  # "<exchange>: N frames -> trade 1, quote 2, ..."
    counts = {kind: int(n) for kind, n in _COUNTS.findall(first.split("->", 1)[1]) if int(n)}
    return seconds, counts


def _cryptofeed(directory: Path, feed_id: str) -> tuple[float, dict[str, int]]:
    # Relative names (playback tells its files apart by "ws" and "http" anywhere in the path),
    # with a "/" (it takes the exchange from what follows the last one).
    argv = [sys.executable, "-c", PLAYBACK, feed_id, f"./{feed_id}.1", f"./{feed_id}.ws.1.0"]
    start = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=directory, timeout=TIMEOUT_S, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"cryptofeed playback exited {done.returncode}: {_last(done.stderr)}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, dict(answer["callbacks"])


def _counts_check(ours: dict[str, int], callbacks: dict[str, int]) -> str:
    differ = [
        f"{channel} {n} vs our {CHANNEL_KIND.get(channel, channel)} "
        f"{ours.get(CHANNEL_KIND.get(channel, channel), 0)}"
        for channel, n in sorted(callbacks.items())
        if ours.get(CHANNEL_KIND.get(channel, channel), 0) != n
    ]
    return "equal" if not differ else "differ: " + "; ".join(differ)


def _last(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
