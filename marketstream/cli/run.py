"""`marketstream run` and `marketstream demo`: the hot path in one process (`marketstream.run`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from marketstream.cli.common import Commands, add_state_dir, config_of
from marketstream.cli.output import print_json, print_status
from marketstream.logs import setup_logging
from marketstream.signals import run_until_signal


def add_commands(commands: Commands) -> None:
    run = commands.add_parser(
        "run", help="start the local services, ingest and the hot writer (Ctrl-C stops)"
    )
    add_state_dir(run)
    run.set_defaults(handler=_cmd_run)

    demo = commands.add_parser(
        "demo", help="replay recordings through ingest and the hot writer; print a JSON summary"
    )
    demo.add_argument(
        "--recordings",
        type=Path,
        metavar="DIR",
        help="recordings to replay (default: $MARKETSTREAM_RECORDINGS, else the real "
        "recordings shipped in tests/data/recordings)",
    )
    demo.add_argument(
        "--only-recorded",
        action="store_true",
        help="replay only the recordings; by default each exchange with no recording "
        "replays a session generated in its protocol, where its venue generates one",
    )
    demo.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".marketstream-demo"),
        metavar="DIR",
        help="the demo's own services, emptied first (default: .marketstream-demo)",
    )
    demo.add_argument(
        "--speed", type=float, metavar="X", help="replay at recorded speed times X (default: max)"
    )
    demo.add_argument(
        "--keep-services", action="store_true", help="leave the services running afterwards"
    )
    demo.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="S",
        help="once drained, keep /metrics served for S seconds (URLs on stderr)",
    )
    demo.set_defaults(handler=_cmd_demo)


def _cmd_run(args: argparse.Namespace) -> int:
    from marketstream.ingest.service import plan_connections  # noqa: PLC0415
    from marketstream.instruments.store import cache_path  # noqa: PLC0415
    from marketstream.run.pipeline import Pipeline  # noqa: PLC0415
    from marketstream.services.manager import start_services  # noqa: PLC0415
    from marketstream.wiring import pipeline_endpoints  # noqa: PLC0415

    config = config_of(args)
    plans = plan_connections(config)  # configuration errors before anything starts
    status = start_services(config, args.state_dir)
    print_status(status, as_json=False)
    if not status.all_answering:
        return 1
    pipeline = Pipeline(
        config,
        pipeline_endpoints(config, args.state_dir),
        plans=plans,
        instrument_cache=cache_path(config, args.state_dir),
    )
    setup_logging()
    print("pipeline running: ingest -> Redis Streams -> QuestDB; Ctrl-C stops it", flush=True)

    run_until_signal(pipeline.run)
    print("pipeline stopped; services still run: `marketstream services stop` ends them")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from marketstream.replay.recording_format import default_recordings  # noqa: PLC0415
    from marketstream.run.demo import prepare_state, run_demo  # noqa: PLC0415
    from marketstream.services.manager import stop_services  # noqa: PLC0415

    config = config_of(args)
    recordings = args.recordings or default_recordings()
    setup_logging()
    prepare_state(config, args.state_dir)
    try:
        summary = asyncio.run(
            run_demo(
                config,
                recordings,
                args.state_dir,
                speed=args.speed,
                linger_s=args.linger,
                generate_missing=not args.only_recorded,
            )
        )
    finally:
        if not args.keep_services:
            stop_services(config, args.state_dir)
    print_json(summary)
    if args.keep_services:
        print(
            f"services kept running in {args.state_dir}: try "
            f"`marketstream query latest --state-dir {args.state_dir}`",
            file=sys.stderr,
        )
    return 0
