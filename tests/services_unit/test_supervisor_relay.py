"""The supervisor relays a child's output whatever its line lengths.

A child's log line can be long (a warning quoting a large frame). Read line by line with
asyncio's `readline`, a line past the stream limit (64 KiB) raised, ended the relay, and left
the child writing into a pipe nobody read: it blocked once the pipe filled, a silent stall.
"""

from __future__ import annotations

import asyncio
import sys

from marketstream.config import SupervisorConfig
from marketstream.run.supervisor import ChildSpec, Supervisor

LONG = 200_000  # bytes, three times asyncio's default stream limit
# Far more output after the long line than a pipe holds (64 KiB): a child whose output is
# not read would block here and never print "done".
CHILD = (
    "import sys\n"
    f"sys.stdout.write('x' * {LONG} + '\\n')\n"
    "for i in range(2000):\n"
    "    sys.stdout.write(f'line {i} ' + 'y' * 100 + '\\n')\n"
    "print('done', flush=True)\n"
)


async def test_a_line_longer_than_the_stream_limit_is_relayed_and_the_child_keeps_going() -> None:
    spec = ChildSpec("noisy", (sys.executable, "-c", CHILD), 0, "writer")
    supervisor = Supervisor([spec], SupervisorConfig(max_restarts=0, window_s=60))
    await supervisor.start()
    try:
        async with asyncio.timeout(60):
            await supervisor.wait_failed()  # it exits once; max_restarts 0 ends the run
    finally:
        await supervisor.stop()
    tail = list(supervisor.children["noisy"].tail)
    assert tail[-1] == "done"
    assert supervisor.failure is not None
    assert "noisy" in supervisor.failure
    assert "exited with code 0" in supervisor.failure
    assert "failed: ValueError" not in supervisor.failure
