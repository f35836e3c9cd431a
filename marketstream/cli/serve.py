"""`marketstream serve`: the HTTP and WebSocket API (`marketstream.serve`) on uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING

from marketstream.cli.common import Commands, add_command, config_of

if TYPE_CHECKING:
    import uvicorn


def add_commands(commands: Commands) -> None:
    serve = add_command(
        commands,
        "serve",
        _cmd_serve,
        "the HTTP and WebSocket API over Redis and every tier (OpenAPI at /docs)",
        state_dir=True,
    )
    serve.add_argument("--host", metavar="H", help="bind address (default: serve.host)")
    serve.add_argument("--port", type=int, metavar="N", help="port (default: serve.port; 0: any)")


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - the server only where it serves

    from marketstream import event_loop  # noqa: PLC0415
    from marketstream.logs import setup_logging  # noqa: PLC0415
    from marketstream.serve.app import create_app  # noqa: PLC0415
    from marketstream.serve.auth import check_start, token_of  # noqa: PLC0415
    from marketstream.serve.context import ServeContext  # noqa: PLC0415

    config = config_of(args)
    settings = config.serve.model_copy(
        update={
            key: value
            for key, value in (("host", args.host), ("port", args.port))
            if value is not None
        }
    )
    config = config.model_copy(update={"serve": settings})
    check_start(settings.host, token_of(settings, os.environ), settings.token_env)
    context = ServeContext.build(config, args.state_dir)
    setup_logging()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(context),
            host=settings.host,
            port=settings.port,
            loop="none",  # ours: uvloop through marketstream.event_loop
            access_log=False,  # a WebSocket URL may carry ?token=: no request line is logged
            log_config=None,
            ws="websockets-sansio",
        )
    )
    event_loop.run(_serve(server))
    return 0 if server.started else 1


async def _serve(server: uvicorn.Server) -> None:
    """Serve until a signal; once listening, print where (with --port 0, the port chosen)."""
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        for socket in (s for listener in server.servers for s in listener.sockets):
            host, port = socket.getsockname()[:2]
            print(f"marketstream serve: listening on http://{host}:{port}", flush=True)
    await task
    if not server.started:
        print("marketstream: error: serve did not start (see the log above)", file=sys.stderr)
