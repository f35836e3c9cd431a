"""The archiver lock across real processes: held, refused with the holder's pid, and released
by the kernel when the holder is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from marketstream.archiver.lock import LOCK_FILE, ArchiverBusyError, archiver_lock

REPO = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time; from pathlib import Path\n"
    "from marketstream.archiver.lock import archiver_lock\n"
    "with archiver_lock(Path(sys.argv[1])):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(600)\n"
)


def _holder(state: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_held_lock_is_refused_with_the_holders_pid_until_it_is_killed(tmp_path: Path) -> None:
    holder = _holder(tmp_path)
    try:
        busy = pytest.raises(ArchiverBusyError, match=rf"\(pid {holder.pid} since \d{{4}}-")
        with busy, archiver_lock(tmp_path):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    with archiver_lock(tmp_path) as path:  # SIGKILL left no stale lock
        assert path == tmp_path / LOCK_FILE
        assert path.read_text().startswith(f"pid {os.getpid()} since ")
    assert path.read_text() == ""  # released: no holder named
    holder = _holder(tmp_path)  # and another process takes it
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
