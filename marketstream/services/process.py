"""Detached local service processes: free ports, spawn, wait until answering, stop.

A service outlives the `marketstream` command that started it, so it runs in its own session
with its output in a log file and its pid in a pid file. A pid read back later is trusted only
if /proc/<pid>/cmdline still names the service's own data directory: pids are reused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, Self, TypedDict, TypeVar

from marketstream.errors import ServiceError
from marketstream.retry import wait_for

LOOPBACK = "127.0.0.1"  # local services never listen beyond this machine
POLL_INTERVAL_S = 0.1
STOP_TIMEOUT_S = 15.0  # QuestDB flushes WAL on SIGTERM; give it time before SIGKILL
KILL_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 10
EXEC_TIMEOUT_S = 5.0

# An answer check returns None when the service answers, else why it does not.
AnswerCheck = Callable[[], str | None]


@dataclass(frozen=True)
class ServiceProcess:
    """A spawned service: its pid, the text its cmdline must contain, and its log file."""

    name: str
    pid: int
    marker: str
    log_path: Path


class ProcessFiles(TypedDict):
    """Where a spawned service's output and pid go (the `spawn_*` keyword arguments)."""

    log_path: Path
    pid_path: Path


class Answering(Protocol):
    """A spawned service that can tell whether it answers yet."""

    @property
    def process(self) -> ServiceProcess: ...

    def answer_error(self) -> str | None:
        """None when the service answers, else why not."""
        ...


Service = TypeVar("Service", bound=Answering)


@dataclass(frozen=True)
class PortService:
    """A service on one loopback port, in a data directory of its own; subclasses say its name,
    URL and answer check."""

    process: ServiceProcess
    port: int
    NAME: ClassVar[str]  # in errors and logs
    URL: ClassVar[str]  # its endpoint, e.g. "redis://{host}:{port}/0"

    @classmethod
    def spawn_in(
        cls,
        data_dir: Path,
        argv_of: Callable[[Path], Sequence[str]],
        *,
        port: int,
        files: ProcessFiles,
        env: Mapping[str, str] | None = None,
    ) -> Self:
        """`spawn` it on `port`, in its data directory (created here), whose absolute path (in
        `argv_of(path)`) is the marker stop() looks for."""
        if not port_is_free(port):
            raise ServiceError(f"{cls.NAME}: port {LOOPBACK}:{port} is in use")
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = argv_of(data_dir)
        return cls(process=spawn(cls.NAME, argv, marker=str(data_dir), env=env, **files), port=port)

    @property
    def url(self) -> str:
        return self.URL.format(host=LOOPBACK, port=self.port)

    @property
    def urls(self) -> tuple[str, ...]:
        """Its endpoints, in the order services.json names them."""
        return (self.url,)


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True when a listener could bind 127.0.0.1:<port> now.

    SO_REUSEADDR as the servers set it: a port whose old connections linger in TIME_WAIT
    is free for them, one with a listener is not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def tcp_error(host: str, port: int, timeout_s: float = 2.0) -> str | None:
    """None when a TCP connection to host:port succeeds, else the reason it did not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"


def find_executable(name: str, install_hint: str) -> str:
    """The absolute path of `name` on PATH, or a ServiceError that says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"{name} not found: {install_hint}")
    return path


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    marker: str,
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """Start argv[0] (an absolute path) detached, output appended to log_path.

    posix_spawn rather than subprocess.Popen: nothing holds a handle on the child, so a
    service may outlive this process without 'still running' warnings, and setsid puts it
    in its own process group so that stop() also reaches any children it forks.
    """
    if marker not in argv:
        raise ValueError(f"{name}: marker {marker!r} must be one of the arguments")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(argv)}\n")
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        pid = os.posix_spawn(
            argv[0],
            list(argv),
            dict(os.environ if env is None else env),
            file_actions=file_actions,
            setsid=True,
        )
    except OSError as exc:
        raise ServiceError(f"{name}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    pid_path.write_text(f"{pid}\n", encoding="utf-8")
    _wait_exec_done(pid)
    return ServiceProcess(name=name, pid=pid, marker=marker, log_path=log_path)


def _wait_exec_done(pid: int, timeout_s: float = EXEC_TIMEOUT_S) -> None:
    """Wait until the child's cmdline shows its arguments (or it has exited).

    posix_spawn returns while exec is still setting up the new program, when
    /proc/<pid>/cmdline reads empty; is_ours() must not mistake that for a stranger.
    """
    wait_for(lambda: cmdline(pid) is not None or not is_running(pid), timeout_s, 0.001)


def _reap(pid: int) -> None:
    """Collect the exit status if pid is our own exited child, so it is not left a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def cmdline(pid: int) -> list[str] | None:
    """The arguments of a live process, or None if it is gone or a zombie."""
    _reap(pid)
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # zombies and kernel threads have an empty cmdline
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def is_running(pid: int) -> bool:
    """True while pid exists and is not a zombie, whatever its cmdline says."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[:1]  # the name in parentheses may contain spaces
    return bool(state) and state[0] not in ("Z", "X")


def is_ours(pid: int | None, marker: str) -> bool:
    """True when pid is alive and its arguments include marker (our data directory)."""
    if pid is None or pid <= 0:
        return False
    args = cmdline(pid)
    return args is not None and marker in args


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, joined with ' | ' so that they fit in one error line."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {log_path})"
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else f"(empty log {log_path})"


def wait_until_answering(process: ServiceProcess, check: AnswerCheck, timeout_s: float) -> None:
    """Poll check() until it passes; stop the process and raise if it exits or times out."""
    problem: str | None = None

    def answered() -> bool:
        nonlocal problem
        problem = check()
        if problem is not None and not is_running(process.pid):
            raise ServiceError(
                f"{process.name} exited during start; last lines of {process.log_path}: "
                f"{log_tail(process.log_path)}"
            )
        return problem is None

    if not wait_for(answered, timeout_s, POLL_INTERVAL_S):
        stop(process.pid, process.marker)
        raise ServiceError(
            f"{process.name} did not answer within {timeout_s:g} s ({problem}); "
            f"last lines of {process.log_path}: {log_tail(process.log_path)}"
        )


def started(service: Service, timeout_s: float) -> Service:
    """The service once it answers; stopped, and a ServiceError with its log, if it does not."""
    wait_until_answering(service.process, service.answer_error, timeout_s)
    return service


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # setsid made the service the leader of its own group
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pid: int, timeout_s: float) -> bool:
    return wait_for(lambda: not is_running(pid), timeout_s, POLL_INTERVAL_S)


def stop(
    pid: int | None,
    marker: str,
    *,
    term_timeout_s: float = STOP_TIMEOUT_S,
    kill_timeout_s: float = KILL_TIMEOUT_S,
) -> bool:
    """SIGTERM, then SIGKILL after term_timeout_s; True if it was running. Raises if it lives on.

    A pid that is not ours (gone, or reused by another program) is left alone.
    """
    if pid is None or not is_ours(pid, marker):
        return False
    _signal_group(pid, signal.SIGTERM)
    if _wait_gone(pid, term_timeout_s):
        return True
    _signal_group(pid, signal.SIGKILL)
    if _wait_gone(pid, kill_timeout_s):
        return True
    raise ServiceError(f"pid {pid} ({marker}) is still running after SIGKILL")


def read_pid(pid_path: Path) -> int | None:
    """The pid in a pid file, or None if the file is missing or not a number."""
    try:
        return int(pid_path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
