"""Child processes of the run: started, SIGKILLed, restarted, and their peak memory.

Every `marketstream` process runs as `python -m marketstream`, its output appended to its
own log under the state directory. A process that exits when nobody killed it is counted
(`unexpected_exits`) and restarted: the suite must see a silent death, not hide it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM), 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def rss_tree_kb(pid: int) -> int:
    """Peak RSS of pid plus its children (a JVM or a server forks little, but count them)."""
    total = peak_rss_kb(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()
    except OSError:
        return total
    return total + sum(peak_rss_kb(int(child)) for child in children)


@dataclass
class PeakMemory:
    """The highest peak RSS seen per role, across restarts."""

    kb: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def see(self, role: str, pid: int | None) -> None:
        if pid is None:
            return
        value = rss_tree_kb(pid)
        with self.lock:
            self.kb[role] = max(self.kb.get(role, 0), value)

    def as_mb(self) -> dict[str, float]:
        with self.lock:
            return {role: round(kb / 1024, 1) for role, kb in sorted(self.kb.items())}


class Child:
    """One `marketstream` command, restartable under the same arguments."""

    def __init__(self, role: str, args: Sequence[str], log_dir: Path, memory: PeakMemory) -> None:
        self.role = role
        self.args = list(args)
        self.log_path = log_dir / f"{role}.log"
        self.memory = memory
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.unexpected_exits: list[int] = []
        self._lock = threading.Lock()
        self._expect_exit = False

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        with self._lock:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
            log.write(f"--- {time.strftime('%H:%M:%S')} start {' '.join(self.args)}\n".encode())
            log.flush()
            env = {**os.environ, "MARKETSTREAM_LOG_FORMAT": "json"}
            self.process = subprocess.Popen(
                [sys.executable, "-m", "marketstream", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
            log.close()
            self.starts += 1
            self._expect_exit = False

    def kill(self) -> None:
        """SIGKILL, as a crash would; reaped at once."""
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                return
            self.memory.see(self.role, self.process.pid)
            self._expect_exit = True
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.kills += 1

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (the graceful stop), SIGKILL after timeout_s; the exit code."""
        with self._lock:
            if self.process is None:
                return None
            self._expect_exit = True
            if self.process.poll() is None:
                self.memory.see(self.role, self.process.pid)
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            return self.process.returncode

    def check(self) -> int | None:
        """The exit code if it died on its own (then counted), else None."""
        with self._lock:
            if self.process is None or self._expect_exit:
                return None
            code = self.process.poll()
            if code is None:
                self.memory.see(self.role, self.process.pid)
                return None
            self._expect_exit = True  # counted once
            self.unexpected_exits.append(code)
            return code

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:])
