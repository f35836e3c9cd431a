"""`marketstream write-hot`: Redis Streams -> QuestDB (`marketstream.writers`)."""

from __future__ import annotations

import argparse

from marketstream.cli.common import Commands, add_daemon, config_of, feed_names, shard_text
from marketstream.gc_settings import apply_gc_settings
from marketstream.logs import setup_logging
from marketstream.signals import run_until_signal


def add_commands(commands: Commands) -> None:
    write_hot = add_daemon(
        commands,
        "write-hot",
        _cmd_write_hot,
        "write the Redis streams into QuestDB (consumer group hot-writer)",
    )
    write_hot.add_argument(
        "--consumer",
        metavar="NAME",
        help="consumer name in the group (default: host-pid); a restart under the same name "
        "resumes its own pending entries first",
    )
    write_hot.add_argument(
        "--exchanges",
        type=feed_names,
        metavar="EX[,EX...]",
        help="the exchanges and sources (stream hash tags) this writer serves, comma-separated "
        "(default: hot.exchanges, empty meaning all)",
    )
    write_hot.add_argument(
        "--shard",
        type=shard_text,
        metavar="I/N",
        help="of those, own the streams whose (exchange, table) hashes to I of N, so no stream "
        "is split between writers (default: hot.shard, 1/1 meaning all)",
    )


def _cmd_write_hot(args: argparse.Namespace) -> int:
    from marketstream.wiring import pipeline_endpoints  # noqa: PLC0415
    from marketstream.writers.hot_writer import HotWriter  # noqa: PLC0415

    config = config_of(args)
    endpoints = pipeline_endpoints(config, args.state_dir)
    writer = HotWriter(
        config,
        endpoints.redis,
        endpoints.questdb_http,
        consumer=args.consumer,
        exchanges=args.exchanges,
        shard=args.shard,
    )
    setup_logging()
    apply_gc_settings(config.runtime)
    run_until_signal(lambda stop: writer.run(stop, metrics_port=args.metrics_port))
    return 0
