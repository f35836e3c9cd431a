"""`write-hot --shard I/N`: every stream has exactly one owner among N writers."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.config import PipelineConfig, load_config
from marketstream.run.supervisor import child_specs
from marketstream.schemas.columns import SPECS
from marketstream.tiers.redis_bus import legacy_stream_key, stream_key
from marketstream.writers.stream_shard import StreamShard

EXCHANGES = ("binance", "binance-usdm", "coinbase", "kraken", "okx", "bybit")
SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "pipeline.yaml"
STREAMS = [stream_key(spec.table, ex) for spec in SPECS for ex in EXCHANGES]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_each_stream_has_exactly_one_owner(count: int) -> None:
    shards = [StreamShard(i, count) for i in range(1, count + 1)]
    for key in STREAMS:
        assert sum(shard.owns(key) for shard in shards) == 1, key


def test_two_writers_each_get_a_share() -> None:
    first, second = StreamShard(1, 2), StreamShard(2, 2)
    assert 0 < sum(map(first.owns, STREAMS)) < len(STREAMS)
    assert sum(map(second.owns, STREAMS)) == len(STREAMS) - sum(map(first.owns, STREAMS))


def test_both_key_versions_of_a_stream_have_the_same_owner() -> None:
    for count in (2, 3, 5):
        for index in range(1, count + 1):
            shard = StreamShard(index, count)
            for spec in SPECS:
                for ex in EXCHANGES:
                    new, old = stream_key(spec.table, ex), legacy_stream_key(spec.table, ex)
                    assert shard.owns(new) == shard.owns(old), (new, old, shard)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0/2", "shard 0/2: expected I/N with 1 <= I <= N"),
        ("3/2", "shard 3/2: expected I/N with 1 <= I <= N"),
        ("2", "shard '2': expected I/N, e.g. 1/2"),
        ("a/b", "shard 'a/b': expected I/N, e.g. 1/2"),
    ],
)
def test_a_bad_shard_is_refused_naming_it(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="^" + why.replace("(", r"\(") + "$"):
        StreamShard.parse(text)


def _config() -> PipelineConfig:
    return load_config(SHIPPED, environ={})


def test_run_gives_each_of_its_writers_its_own_shard() -> None:
    specs = child_specs(_config(), writers=3, config_file=None, state_dir=None)
    shards = [s.argv[s.argv.index("--shard") + 1] for s in specs if s.role == "writer"]
    assert shards == ["1/3", "2/3", "3/3"]
    [alone] = [
        s for s in child_specs(_config(), writers=1, config_file=None, state_dir=None)
        if s.role == "writer"
    ]  # fmt: skip
    assert "--shard" not in alone.argv
