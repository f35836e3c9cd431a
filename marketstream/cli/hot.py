"""`marketstream write-hot`: Redis Streams -> QuestDB (`marketstream.writers`)."""

from __future__ import annotations

import argparse

from marketstream.cli.common import Commands, add_metrics_port, add_state_dir, config_of
from marketstream.logs import setup_logging
from marketstream.signals import run_until_signal


def add_commands(commands: Commands) -> None:
    write_hot = commands.add_parser(
        "write-hot", help="write the Redis streams into QuestDB (consumer group hot-writer)"
    )
    write_hot.add_argument(
        "--consumer",
        metavar="NAME",
        help="consumer name in the group (default: host-pid); a restart under the same name "
        "resumes its own pending entries first",
    )
    add_metrics_port(write_hot)
    add_state_dir(write_hot)
    write_hot.set_defaults(handler=_cmd_write_hot)


def _cmd_write_hot(args: argparse.Namespace) -> int:
    from marketstream.wiring import pipeline_endpoints  # noqa: PLC0415
    from marketstream.writers.hot_writer import HotWriter  # noqa: PLC0415

    config = config_of(args)
    endpoints = pipeline_endpoints(config, args.state_dir)
    writer = HotWriter(config, endpoints.redis, endpoints.questdb_http, consumer=args.consumer)
    setup_logging()

    run_until_signal(lambda stop: writer.run(stop, metrics_port=args.metrics_port))
    return 0
