"""`marketstream replay-server` and `marketstream record`: serving and capturing recordings
(development and test tools)."""

from __future__ import annotations

import argparse
from pathlib import Path

from marketstream.cli.common import Commands, config_of, port_number, positive_float, positive_int
from marketstream.logs import setup_logging


def add_commands(commands: Commands) -> None:
    replay = commands.add_parser(
        "replay-server", help="serve a recording over a local WebSocket, as the exchange would"
    )
    replay.add_argument("--recording", required=True, type=Path, metavar="FILE")
    replay.add_argument("--host", default="127.0.0.1", help="address to listen on")
    replay.add_argument("--port", type=port_number, default=0, help="port (default: a free one)")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=positive_float, default=1.0, help="recorded gaps divided by X"
    )
    pace.add_argument("--max", action="store_true", help="send as fast as clients read")
    replay.add_argument(
        "--drop-every", type=positive_int, metavar="N", help="close each connection after N frames"
    )
    replay.set_defaults(handler=_cmd_replay_server)

    record = commands.add_parser("record", help="capture an exchange feed into a recording")
    record.add_argument("--exchange", required=True, metavar="EX")
    record.add_argument("--out", required=True, type=Path, metavar="FILE", help="appended to")
    record.add_argument("--url", help="WebSocket URL (default: the config's; no REST then)")
    record.add_argument("--rest-url", metavar="URL", help="REST base for book snapshots")
    record.add_argument("--symbols", nargs="+", default=[], metavar="S", help="e.g. BTC-USDT")
    record.add_argument("--channels", nargs="+", default=[], metavar="C", help="e.g. trades")
    record.add_argument("--duration", type=positive_float, metavar="SECONDS", help="then stop")
    record.add_argument("--max-frames", type=positive_int, metavar="N", help="then stop")
    record.set_defaults(handler=_cmd_record)


def _cmd_replay_server(args: argparse.Namespace) -> int:
    from marketstream import event_loop  # noqa: PLC0415 - load on use
    from marketstream.replay.server import ReplayServer, serve_until_signal  # noqa: PLC0415
    from marketstream.venues.registry import DIALECTS  # noqa: PLC0415

    server = ReplayServer(
        args.recording,
        DIALECTS,
        host=args.host,
        port=args.port,
        speed=args.speed,
        max_speed=args.max,
        drop_every=args.drop_every,
    )
    setup_logging()
    event_loop.run(serve_until_signal(server, lambda line: print(line, flush=True)))
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from marketstream.ingest.recorder import record_until_signal, resolve_target  # noqa: PLC0415

    target = resolve_target(
        args.exchange,
        url=args.url,
        rest_url=args.rest_url,
        symbols=args.symbols,
        channels=args.channels,
        load_config=lambda: config_of(args),
    )
    setup_logging()
    stats = record_until_signal(
        target, args.out, duration_s=args.duration, max_frames=args.max_frames
    )
    print(
        f"recorded {stats.frames} frames, {stats.snapshots} snapshots and "
        f"{stats.instrument_lists} instrument lists from {target.url} to {args.out}"
    )
    return 0
