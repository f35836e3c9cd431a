"""Ingest, the hot writers and the API as child processes of `run` and `demo`, as compose
runs them.

Each child is the CLI daemon itself (`marketstream ingest`, `write-hot`, `serve`), so a
child behaves exactly as it does under compose: its own event loop on its own core, its own
/metrics and /healthz. The supervisor restarts a child that dies and says so (exit code or
signal, restart count, the pause before the restart); a child that keeps dying within the
window ends the whole run with its last output in the error. Stopping goes in the pipeline's
order: the API first (it only reads, and should not answer from a pipeline being stopped),
then ingest, so that what it flushes on SIGTERM is still written, then the writers, which
finish and acknowledge the batch in hand.

Children run in their own session, so a terminal's Ctrl-C reaches only the supervisor (which
then stops them in order), and ask the kernel for SIGTERM when the supervisor dies
(`signals.follow_parent`), so none outlives it. Their output is relayed line by line to the
supervisor's stderr, prefixed with the child's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from marketstream.config import PipelineConfig, SupervisorConfig
from marketstream.errors import MarketStreamError
from marketstream.services.process import free_port
from marketstream.signals import PARENT_PID_ENV

log = logging.getLogger(__name__)

TAIL_LINES: Final = 15
RELAY_READ: Final = 1 << 16  # bytes per read of a child's output
RELAY_LINE_MAX: Final = 1 << 20  # a longer line is relayed in parts
STOP_ORDER: Final = ("api", "ingest", "writer")


class SupervisorError(MarketStreamError):
    """A child kept dying: the run ends, non-zero, with this cause."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One child: its name in logs, its command line and the port of its /metrics."""

    name: str
    argv: tuple[str, ...]
    metrics_port: int
    role: str  # "api", "ingest" or "writer": the stop order (STOP_ORDER)
    url: str | None = None  # where it answers clients (the API's address)


@dataclass(slots=True)
class Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    exits: list[str] = field(default_factory=list)  # how each incarnation ended
    started_at: float = 0.0  # monotonic time of the current incarnation's start
    deaths: deque[float] = field(default_factory=deque)  # monotonic times within the window
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def status(self, host: str) -> dict[str, Any]:
        status = {
            "pid": self.pid,
            "restarts": self.restarts,
            "exits": list(self.exits),
            "metrics": f"http://{host}:{self.spec.metrics_port}/metrics",
        }
        return status if self.spec.url is None else status | {"url": self.spec.url}


def exit_description(returncode: int) -> str:
    """`exited with code 3`, or `killed by SIGKILL` for a negative return code."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


def child_specs(
    config: PipelineConfig,
    *,
    writers: int,
    config_file: Path | None,
    state_dir: Path | None,
    consumer_prefix: str | None = None,
    serve: bool = False,
) -> list[ChildSpec]:
    """Ingest, `writers` hot writers (each its own consumer and /metrics port) and, with
    `serve`, the API.

    Ports: ingest's `ingest.metrics_port`; writer i's `hot.metrics_port + i *
    hot.metrics_port_step`; the API's `serve.port` and `serve.metrics_port`; a configured 0
    gives each child a free port picked here, kept across its restarts (Prometheus keeps
    scraping the same target, clients keep the same address)."""
    base = [sys.executable, "-m", "marketstream"]
    if config_file is not None:
        base += ["--config", str(config_file)]

    def argv(command: str, port: int, *extra: str) -> tuple[str, ...]:
        state = ["--state-dir", str(state_dir)] if state_dir is not None else []
        return (*base, command, *state, "--metrics-port", str(port), *extra)

    ingest_port = config.ingest.metrics_port or free_port()
    specs = [ChildSpec("ingest", argv("ingest", ingest_port), ingest_port, "ingest")]
    prefix = consumer_prefix or socket.gethostname()
    for i in range(writers):
        port = config.hot.metrics_port
        port = port + i * config.hot.metrics_port_step if port else free_port()
        name = f"writer-{i + 1}"
        consumer = f"{prefix}-hot-{name}"  # a restart resumes its own pending entries first
        command = argv("write-hot", port, "--consumer", consumer)
        specs.append(ChildSpec(name, command, port, "writer"))
    if serve:
        api = config.serve
        port, metrics = api.port or free_port(), api.metrics_port or free_port()
        command = argv("serve", metrics, "--port", str(port))
        host = f"[{api.host}]" if ":" in api.host else api.host
        specs.append(ChildSpec("serve", command, metrics, "api", f"http://{host}:{port}"))
    return specs


class Supervisor:
    """`await supervisor.run(stop)`: start the children, keep them running until `stop`, then
    stop them in order. Raises SupervisorError when a child kept dying."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        settings: SupervisorConfig,
        *,
        env: Mapping[str, str] | None = None,
        metrics_host: str = "127.0.0.1",
        drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`drain`: awaited between stopping ingest and stopping the writers (bounded by
        `stop_timeout_s`), so that the writers write what ingest flushed before they exit."""
        self._drain = drain
        self.children = {spec.name: Child(spec) for spec in specs}
        self.settings = settings
        self.metrics_host = metrics_host
        self.failure: str | None = None
        self._env = dict(os.environ if env is None else env)
        self._env[PARENT_PID_ENV] = str(os.getpid())
        if sys.stderr.isatty():
            self._env.setdefault("MARKETSTREAM_LOG_FORMAT", "text")
        self._stopping = False
        self._failed = asyncio.Event()
        self._keepers: list[asyncio.Task[None]] = []
        self._relays: set[asyncio.Task[None]] = set()

    def status(self) -> dict[str, dict[str, Any]]:
        """Each child's pid, restarts, how its past incarnations ended and its /metrics."""
        return {name: c.status(self.metrics_host) for name, c in self.children.items()}

    async def start(self) -> None:
        """Start every child (and its keeper, which restarts it)."""
        for child in self.children.values():
            await self._spawn(child)
        self._keepers = [
            asyncio.create_task(self._keep(c), name=f"keep-{c.spec.name}")
            for c in self.children.values()
        ]
        for keeper in self._keepers:
            keeper.add_done_callback(self._watch)

    async def wait_failed(self) -> None:
        """Return once a child kept dying (then `failure` says why)."""
        await self._failed.wait()

    def check(self) -> None:
        """Raise SupervisorError if a child kept dying."""
        if self.failure is not None:
            raise SupervisorError(self.failure)

    async def run(
        self,
        stop: asyncio.Event,
        on_started: Callable[[Supervisor], Awaitable[None]] | None = None,
    ) -> None:
        """Run the children until `stop` or a failure; `on_started` is awaited once they
        are started (a failure in it stops them and is raised)."""
        await self.start()
        try:
            if on_started is not None:
                await on_started(self)
            stopping = asyncio.create_task(stop.wait())
            failed = asyncio.create_task(self._failed.wait())
            await asyncio.wait({stopping, failed}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failed.cancel()
        finally:
            await self.stop()
        self.check()

    async def stop(self) -> None:
        """The API first, then ingest (it flushes what it accepted), then the writers (each
        finishes the batch in hand); SIGKILL after `stop_timeout_s`."""
        self._stopping = True
        for role in STOP_ORDER:
            chosen = [c for c in self.children.values() if c.spec.role == role]
            if role == "writer" and self._drain is not None and self.failure is None:
                await self._wait_drained()
            await asyncio.gather(*(self._terminate(c) for c in chosen))
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _wait_drained(self) -> None:
        assert self._drain is not None
        try:
            async with asyncio.timeout(self.settings.stop_timeout_s):
                await self._drain()
        except TimeoutError:
            log.warning(
                "supervisor: the writers did not drain the streams within %g s; what is left "
                "stays pending in Redis for the next run",
                self.settings.stop_timeout_s,
            )
        except Exception:
            log.exception("supervisor: cannot tell whether the streams are drained")

    # --- one child --------------------------------------------------------------------------
    async def _spawn(self, child: Child) -> None:
        process = await asyncio.create_subprocess_exec(
            *child.spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._env,
            start_new_session=True,
        )
        child.process = process
        child.started_at = time.monotonic()
        log.info(
            "supervisor: started %s (pid %d, metrics port %d%s)",
            child.spec.name,
            process.pid,
            child.spec.metrics_port,
            "" if child.spec.url is None else f", serving {child.spec.url}",
        )
        relay = asyncio.create_task(self._relay(child, process), name=f"relay-{child.spec.name}")
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        relay.add_done_callback(self._watch)

    async def _relay(self, child: Child, process: asyncio.subprocess.Process) -> None:
        """The child's output to our stderr, each line prefixed with its name; the last lines
        kept for the error if it keeps dying.

        Read in chunks, not with `readline`: a line longer than the stream's limit (a log
        line quoting a large frame) would make `readline` raise, end the relay, and leave the
        child blocked on a full pipe. A line is cut at `RELAY_LINE_MAX` bytes instead."""
        assert process.stdout is not None
        prefix = f"{child.spec.name}: ".encode()
        pending = b""
        while chunk := await process.stdout.read(RELAY_READ):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > RELAY_LINE_MAX:
                lines.append(pending)
                pending = b""
            for line in lines:
                self._emit(child, prefix, line)
        if pending:
            self._emit(child, prefix, pending)

    @staticmethod
    def _emit(child: Child, prefix: bytes, line: bytes) -> None:
        child.tail.append(line.decode(errors="replace").rstrip())
        out = getattr(sys.stderr, "buffer", None)
        with contextlib.suppress(OSError, ValueError):
            if out is not None:
                out.write(prefix + line + b"\n")
                out.flush()
            else:  # a text-only stderr (an embedding application's)
                sys.stderr.write((prefix + line + b"\n").decode(errors="replace"))

    def _watch(self, task: asyncio.Task[None]) -> None:
        """A keeper or relay that ended by an error leaves a child unsupervised (or blocked on
        a full pipe): that ends the run, with the cause logged, instead of passing silently."""
        if task.cancelled() or (exc := task.exception()) is None:
            return
        self.failure = f"{task.get_name()} failed: {type(exc).__name__}: {exc}"
        log.error("supervisor: %s; stopping the run", self.failure, exc_info=exc)
        self._failed.set()

    async def _keep(self, child: Child) -> None:
        """Wait for the child to exit; restart it, or end the run when it keeps dying."""
        while True:
            process = child.process
            assert process is not None
            returncode = await process.wait()
            if self._stopping:
                return
            how = exit_description(returncode)
            child.exits.append(how)
            now = time.monotonic()
            child.deaths.append(now)
            while child.deaths and now - child.deaths[0] > self.settings.window_s:
                child.deaths.popleft()
            if len(child.deaths) > self.settings.max_restarts:
                last = " | ".join(child.tail) or "(no output)"
                self.failure = (
                    f"{child.spec.name} (pid {process.pid}) {how}: it died "
                    f"{len(child.deaths)} times within {self.settings.window_s:g} s "
                    f"(supervisor.max_restarts {self.settings.max_restarts}); "
                    f"its last output: {last}"
                )
                log.error("supervisor: %s; stopping the run", self.failure)
                self._failed.set()
                return
            pause = min(
                self.settings.backoff_initial_s * 2 ** (len(child.deaths) - 1),
                self.settings.backoff_max_s,
            )
            child.restarts += 1
            log.warning(
                "supervisor: %s (pid %d) %s after %.1f s; restart %d in %.1f s",
                child.spec.name,
                process.pid,
                how,
                now - child.started_at,
                child.restarts,
                pause,
            )
            await asyncio.sleep(pause)
            if self._stopping:
                return
            try:
                await self._spawn(child)
            except OSError as exc:  # cannot even start it: no silent end of supervision
                self.failure = f"{child.spec.name} cannot be restarted: {exc}"
                log.error("supervisor: %s; stopping the run", self.failure)
                self._failed.set()
                return

    async def _terminate(self, child: Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.stop_timeout_s):
                returncode = await process.wait()
        except TimeoutError:
            log.error(
                "supervisor: %s (pid %d) still running %g s after SIGTERM; SIGKILL",
                child.spec.name,
                process.pid,
                self.settings.stop_timeout_s,
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            returncode = await process.wait()
        if returncode != 0:
            log.warning(
                "supervisor: %s (pid %d) %s on stop",
                child.spec.name,
                process.pid,
                exit_description(returncode),
            )
        else:
            log.info("supervisor: %s (pid %d) stopped", child.spec.name, process.pid)
