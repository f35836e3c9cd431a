"""`marketstream run` and `marketstream demo`: ingest and the hot writers as supervised child
processes (`marketstream.run`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from marketstream.cli.common import Commands, add_state_dir, config_of, positive_int
from marketstream.cli.output import print_json, print_status
from marketstream.gc_settings import apply_gc_settings
from marketstream.logs import setup_logging
from marketstream.signals import run_until_signal


def add_commands(commands: Commands) -> None:
    run = commands.add_parser(
        "run", help="start the local services, ingest, the hot writers and the API (Ctrl-C stops)"
    )
    add_state_dir(run)
    _add_writers(run)
    run.add_argument(
        "--no-serve",
        action="store_true",
        help="do not start the API (`marketstream serve`; default: serve.enabled)",
    )
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
    _add_writers(demo)
    demo.set_defaults(handler=_cmd_demo)


def _add_writers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--writers",
        type=positive_int,
        metavar="N",
        help="hot writer processes, each its own consumer in the group (default: hot.writers)",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from marketstream.ingest.service import plan_connections  # noqa: PLC0415
    from marketstream.run.processes import run_processes  # noqa: PLC0415
    from marketstream.serve.auth import check_start, token_of  # noqa: PLC0415
    from marketstream.services.manager import start_services  # noqa: PLC0415
    from marketstream.wiring import pipeline_endpoints  # noqa: PLC0415

    config = config_of(args)
    plan_connections(config)  # configuration errors before anything starts
    serve = config.serve.enabled and not args.no_serve
    if serve:  # the API's refusal (a public host without a token) too
        check_start(config.serve.host, token_of(config.serve, os.environ), config.serve.token_env)
    status = start_services(config, args.state_dir)
    print_status(status, as_json=False)
    if not status.all_answering:
        return 1
    endpoints = pipeline_endpoints(config, args.state_dir)
    writers = args.writers or config.hot.writers
    setup_logging()
    print(
        f"pipeline running: ingest -> Redis Streams -> {writers} hot writer process(es) -> "
        f"QuestDB{'; the API (serve)' if serve else ''}; Ctrl-C stops it",
        flush=True,
    )
    run_until_signal(
        lambda stop: run_processes(
            config,
            endpoints,
            stop,
            writers=writers,
            config_file=Path(args.config) if args.config else None,
            state_dir=args.state_dir,
            serve=serve,
        )
    )
    print("pipeline stopped; services still run: `marketstream services stop` ends them")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from marketstream import event_loop  # noqa: PLC0415
    from marketstream.replay.recording_format import default_recordings  # noqa: PLC0415
    from marketstream.run.demo import prepare_state, run_demo  # noqa: PLC0415
    from marketstream.services.manager import stop_services  # noqa: PLC0415

    config = config_of(args)
    recordings = args.recordings or default_recordings()
    setup_logging()
    prepare_state(config, args.state_dir)
    apply_gc_settings(config.runtime)  # the demo's replay servers run in this process
    try:
        summary = event_loop.run(
            run_demo(
                config,
                recordings,
                args.state_dir,
                speed=args.speed,
                linger_s=args.linger,
                generate_missing=not args.only_recorded,
                writers=args.writers,
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
