"""`marketstream warm-server`: the warm gateway's process (`marketstream.gateway`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from marketstream.cli.common import Commands, port_number
from marketstream.config import S3Config, WarmGatewayConfig
from marketstream.errors import ConfigError
from marketstream.logs import setup_logging


def add_commands(commands: Commands) -> None:
    warm = commands.add_parser(
        "warm-server", help="serve a ClickHouse engine directory over HTTP: the warm gateway"
    )
    warm.add_argument("--path", type=Path, required=True, metavar="DIR", help="engine directory")
    warm.add_argument(
        "--host", default="127.0.0.1", help="listen address (default: 127.0.0.1; no auth)"
    )
    warm.add_argument("--port", type=port_number, default=8123, metavar="N", help="(default: 8123)")
    limits = WarmGatewayConfig()
    warm.add_argument(
        "--cold", metavar="LOCATION", help="cold directory or s3://bucket/prefix that file() "
        "and s3() may read (default: none; `services start` passes endpoints.cold)",
    )  # fmt: skip
    warm.add_argument("--s3-endpoint", metavar="URL", help="S3 endpoint of an s3:// --cold")
    warm.add_argument("--s3-region", default=S3Config().region, metavar="NAME")
    warm.add_argument("--max-body-bytes", type=int, default=limits.max_body_bytes, metavar="N")
    warm.add_argument("--max-sessions", type=int, default=limits.max_sessions, metavar="N")
    warm.add_argument(
        "--max-session-timeout", type=float, default=limits.max_session_timeout_s, metavar="S"
    )
    warm.set_defaults(handler=_cmd_warm_server)


def _cmd_warm_server(args: argparse.Namespace) -> int:
    from marketstream.gateway.policy import SourcePolicy  # noqa: PLC0415
    from marketstream.gateway.server import GatewayOptions, serve  # noqa: PLC0415 - engine
    from marketstream.tiers.cold_store import ColdStore  # noqa: PLC0415

    setup_logging()
    try:  # validated as the configuration is
        limits = WarmGatewayConfig(
            max_body_bytes=args.max_body_bytes,
            max_sessions=args.max_sessions,
            max_session_timeout_s=args.max_session_timeout,
        )
        s3 = S3Config(endpoint_url=args.s3_endpoint, region=args.s3_region)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"warm-server: {where}: {first['msg']}") from None
    store = ColdStore.from_location(args.cold, s3) if args.cold else None
    options = GatewayOptions(
        max_body_bytes=limits.max_body_bytes,
        max_sessions=limits.max_sessions,
        max_session_timeout_s=limits.max_session_timeout_s,
        policy=SourcePolicy.for_store(store),
    )
    serve(args.path, host=args.host, port=args.port, options=options)
    return 0
