"""A real `marketstream serve` subprocess for the serve tests: started on a free port with
the given environment, its URL read from the line it prints once listening."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.integration.endpoints import REPO

LISTENING = "marketstream serve: listening on "
METRICS_AT = "marketstream serve: metrics on "
START_TIMEOUT_S = 60


def serve_env(environ: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without MARKETSTREAM_* variables, with `environ` over it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    return env | dict(environ)


@contextmanager
def running_serve(
    environ: Mapping[str, str], state_dir: Path, *args: str
) -> Iterator[tuple[str, list[str]]]:
    """(base URL, lines it printed so far) while `marketstream serve` runs; stopped after."""
    argv = [sys.executable, "-m", "marketstream", "serve", "--port", "0", "--metrics-port", "0"]
    process = subprocess.Popen(
        [*argv, "--state-dir", str(state_dir), *args],
        cwd=REPO,
        env=serve_env(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    seen: queue.Queue[str | None] = queue.Queue()

    def relay() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            seen.put(line)
        seen.put(None)

    threading.Thread(target=relay, daemon=True).start()
    try:
        while True:
            line = seen.get(timeout=START_TIMEOUT_S)
            assert line is not None, "serve exited before listening:\n" + "".join(lines)
            if line.startswith(LISTENING):
                yield line.removeprefix(LISTENING).strip(), lines
                break
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def metrics_url(lines: list[str]) -> str:
    """The token-free /metrics URL a running serve printed (after its listening line)."""
    found = [line.removeprefix(METRICS_AT).strip() for line in lines if line.startswith(METRICS_AT)]
    assert found, "serve printed no metrics URL:\n" + "".join(lines)
    return found[0]
