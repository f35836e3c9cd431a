"""`marketstream serve`: the HTTP and WebSocket API (`marketstream.serve`) on uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any, Final

from marketstream.cli.common import Commands, add_daemon, config_of, port_number

if TYPE_CHECKING:
    import uvicorn
    from prometheus_client import CollectorRegistry

    from marketstream.config import ServeConfig

LISTENING: Final = "marketstream serve: listening on "
METRICS_AT: Final = "marketstream serve: metrics on "


def add_commands(commands: Commands) -> None:
    serve = add_daemon(
        commands,
        "serve",
        _cmd_serve,
        "the HTTP and WebSocket API over Redis and every tier (OpenAPI at /docs)",
    )
    serve.add_argument("--host", metavar="H", help="bind address (default: serve.host)")
    serve.add_argument(
        "--port", type=port_number, metavar="N", help="port (default: serve.port; 0: any)"
    )


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
            for key, value in (
                ("host", args.host),
                ("port", args.port),
                ("metrics_port", args.metrics_port),
            )
            if value is not None
        }
    )
    config = config.model_copy(update={"serve": settings})
    check_start(settings.host, token_of(settings, os.environ), settings.token_env)
    context = ServeContext.build(config, args.state_dir)
    setup_logging()
    app = create_app(context)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            loop="none",  # ours: uvloop through marketstream.event_loop
            access_log=False,  # a WebSocket URL may carry ?token=: no request line is logged
            log_config=None,
            ws="websockets-sansio",
        )
    )
    event_loop.run(_serve(server, settings, app.state.metrics.registry))
    return 0 if server.started else 1


async def _serve(
    server: uvicorn.Server, settings: ServeConfig, registry: CollectorRegistry
) -> None:
    """Serve until a signal; once listening, print where (with --port 0, the port chosen).
    `/metrics` and `/healthz` are also served on `serve.metrics_port` without the token, as
    every daemon serves them, so that Prometheus scrapes the API without its secret."""
    from marketstream.errors import ServiceError  # noqa: PLC0415
    from marketstream.metrics_server import bound_port, serve_metrics  # noqa: PLC0415

    host, port = settings.metrics_host, settings.metrics_port

    def health() -> tuple[bool, dict[str, Any]]:
        serving = server.started and not server.should_exit
        return serving, {"api": "listening" if serving else "not listening"}

    try:
        metrics = await serve_metrics(registry, health, host, port)
    except OSError as exc:
        raise ServiceError(
            f"serve metrics cannot listen on {host}:{port} ({exc.strerror or exc}): "
            "set serve.metrics_port or pass --metrics-port (0 picks a free port)"
        ) from None
    try:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            for socket in (s for listener in server.servers for s in listener.sockets):
                bound_host, bound = socket.getsockname()[:2]
                print(f"{LISTENING}http://{bound_host}:{bound}", flush=True)
            print(f"{METRICS_AT}http://{host}:{bound_port(metrics)}/metrics", flush=True)
        await task
    finally:
        metrics.close()
        await metrics.wait_closed()
    if not server.started:
        print("marketstream: error: serve did not start (see the log above)", file=sys.stderr)
