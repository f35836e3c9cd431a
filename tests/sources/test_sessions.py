"""Generated answers (documented shapes, deterministic, realistic) and REST-only recordings
(batched as the poller asks, readable by the replay's recording reader)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from marketstream.config import TOKEN_ID_RE, load_config
from marketstream.replay.recording_format import read_recording
from marketstream.sources.base import sessions
from marketstream.sources.base.sessions import (
    DEFAULT_TOKENS,
    synthetic_tokens,
    token_set,
    walk_price,
    write_recording,
)
from marketstream.sources.birdeye import sessions as birdeye_sessions
from marketstream.sources.jupiter import sessions as jupiter_sessions
from marketstream.sources.registry import SESSIONS, SOURCE_DEFS
from tests.sources.test_birdeye import DOC_EXAMPLE as BIRDEYE_DOC
from tests.sources.test_jupiter import DOC_EXAMPLE as JUPITER_DOC

REPO = Path(__file__).resolve().parents[2]
START_NS = 1_750_000_000_000_000_000
NS = 1_000_000_000
MINTS = list(DEFAULT_TOKENS.values())
SYMBOLS = {mint: f"{symbol}-USD" for symbol, mint in DEFAULT_TOKENS.items()}


def _kinds(entry: dict[str, Any]) -> dict[str, str]:
    """Each field's JSON kind (an integer and a fraction are both numbers)."""
    return {
        key: "number" if type(v) in (int, float) else type(v).__name__ for key, v in entry.items()
    }


def test_the_default_tokens_are_the_configured_ones() -> None:
    config = load_config(REPO / "configs" / "pipeline.yaml", environ={})
    assert config.sources
    for source in config.sources.values():
        assert list(source.symbols.items()) == list(DEFAULT_TOKENS.items())


def test_generated_answers_have_every_documented_field_of_the_documented_kind() -> None:
    sol = MINTS[0]
    jupiter = orjson.loads(jupiter_sessions.answer_body(MINTS, 0, START_NS, 0))
    assert list(jupiter) == MINTS
    assert _kinds(jupiter[sol]) == _kinds(orjson.loads(JUPITER_DOC)[sol])
    birdeye = orjson.loads(birdeye_sessions.answer_body(MINTS, 0, START_NS, 0))
    assert birdeye["success"] is True
    assert list(birdeye["data"]) == MINTS
    documented = orjson.loads(BIRDEYE_DOC)["data"][sol]
    assert _kinds(birdeye["data"][sol]) == _kinds(documented)
    assert birdeye["data"][sol]["priceInNative"] == 1.0  # SOL in SOL


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_every_token_is_priced_and_mapped_at_every_tick(name: str) -> None:
    source, answer_body = SOURCE_DEFS[name], SESSIONS[name]
    for index in (0, 1, 59, 600):
        tick_ns = START_NS + index * NS
        mapped = source.map_answer(answer_body(MINTS, index, tick_ns, 3), SYMBOLS, tick_ns, 0)
        assert mapped.unpriced == ()
        assert [price.symbol for price in mapped.prices] == list(SYMBOLS.values())
        assert all(price.price > 0 and price.ts == tick_ns for price in mapped.prices)


def test_answers_are_deterministic_in_ids_tick_and_seed_whatever_came_before() -> None:
    body = jupiter_sessions.answer_body(MINTS, 40, START_NS, 5)
    late = walk_price(MINTS[3], 40, 6)
    sessions._walk.cache_clear()  # a fresh process: tick 40 first, not after 0..39
    assert jupiter_sessions.answer_body(MINTS, 40, START_NS, 5) == body
    assert walk_price(MINTS[3], 2, 6) != late
    assert walk_price(MINTS[3], 40, 6) == late
    assert jupiter_sessions.answer_body(MINTS, 40, START_NS, 6) != body


def test_prices_walk_from_realistic_levels_and_stablecoins_stay_near_one() -> None:
    for index in range(0, 3600, 300):
        assert 100 < walk_price(DEFAULT_TOKENS["SOL"], index) < 220
        assert 0.99 < walk_price(DEFAULT_TOKENS["USDC"], index) < 1.01
        assert 1e-6 < walk_price(DEFAULT_TOKENS["BONK"], index) < 1e-4
    assert walk_price(DEFAULT_TOKENS["SOL"], 1) != walk_price(DEFAULT_TOKENS["SOL"], 2)
    other = synthetic_tokens(1)["TKN016"]
    assert 1e-6 <= walk_price(other, 0) <= 1e3


def test_jupiter_blocks_rise_about_two_and_a_half_a_second() -> None:
    def block(index: int) -> int:
        answer = orjson.loads(jupiter_sessions.answer_body(MINTS[:1], index, START_NS + index * NS))
        return int(answer[MINTS[0]]["blockId"])

    assert 25 - 2 <= block(10) - block(0) <= 25 + 2
    assert 2500 - 2 <= block(1000) - block(0) <= 2500 + 2


def test_birdeye_update_times_lag_the_tick_by_at_most_30_s_and_never_go_back() -> None:
    last: dict[str, int] = {}
    lags = set()
    for index in range(120):
        tick_ns = START_NS + index * NS
        data = orjson.loads(birdeye_sessions.answer_body(MINTS, index, tick_ns))["data"]
        for mint in MINTS:
            updated = data[mint]["updateUnixTime"]
            assert 0 <= tick_ns // NS - updated <= 30
            assert updated >= last.get(mint, 0)
            last[mint] = updated
            lags.add(tick_ns // NS - updated)
    assert len(lags) > 10  # spread over the range, not one fixed delay


def test_unpriced_tokens_are_left_out_or_null_as_each_api_does() -> None:
    jup, bonk = DEFAULT_TOKENS["JUP"], DEFAULT_TOKENS["BONK"]
    jupiter = jupiter_sessions.answer_body(MINTS, 0, START_NS, unpriced={jup})
    assert jup not in orjson.loads(jupiter)
    birdeye = birdeye_sessions.answer_body(MINTS, 0, START_NS, unpriced={bonk})
    assert orjson.loads(birdeye)["data"][bonk] is None
    assert SOURCE_DEFS["jupiter"].map_answer(jupiter, SYMBOLS, 0, 0).unpriced == (jup,)
    assert SOURCE_DEFS["birdeye"].map_answer(birdeye, SYMBOLS, 0, 0).unpriced == (bonk,)


def test_token_sets_for_the_bench() -> None:
    tokens = token_set(150)
    assert len(tokens) == 150
    assert len(set(tokens.values())) == 150
    assert list(tokens.items())[:15] == list(DEFAULT_TOKENS.items())
    assert list(tokens)[15:17] == ["TKN016", "TKN017"]
    assert list(tokens)[-1] == "TKN150"
    assert all(re.match(TOKEN_ID_RE, mint) for mint in tokens.values())
    assert token_set(150) == tokens
    assert token_set(150, seed=1) != tokens
    assert token_set(4) == dict(list(DEFAULT_TOKENS.items())[:4])
    assert list(synthetic_tokens(2, first=200)) == ["TKN200", "TKN201"]
    with pytest.raises(ValueError, match="negative"):
        synthetic_tokens(-1)


@pytest.mark.parametrize(("name", "per_tick"), [("jupiter", [50, 50, 50]), ("birdeye", [100, 50])])
def test_a_recording_holds_one_answer_per_tick_per_batch(
    tmp_path: Path, name: str, per_tick: list[int]
) -> None:
    source, tokens = SOURCE_DEFS[name], token_set(150)
    symbols = {mint: f"{symbol}-USD" for symbol, mint in tokens.items()}
    path = tmp_path / "rec" / f"{name}-rest.jsonl"
    base = "http://127.0.0.1:8123/"
    kwargs: dict[str, Any] = {
        "start_ns": START_NS,
        "ticks": 4,
        "cadence_s": 0.5,
        "base_url": base,
        "answer_body": SESSIONS[name],
    }
    assert write_recording(source, tokens, path, **kwargs) == 4 * len(per_tick)
    assert write_recording(source, tokens, path, **kwargs) == 4 * len(per_tick)  # replaced
    frames = list(read_recording(path))
    assert len(frames) == 4 * len(per_tick)
    batches = source.batches(list(tokens.values()))
    targets = {"http://127.0.0.1:8123" + source.target(batch): batch for batch in batches}
    assert [len(batch) for batch in batches] == per_tick
    assert [frame.recv_ns for frame in frames] == sorted(frame.recv_ns for frame in frames)
    for number, frame in enumerate(frames):
        tick_ns = START_NS + number // len(per_tick) * NS // 2
        assert frame.exchange == name
        assert tick_ns < frame.recv_ns < tick_ns + NS // 2
        batch = targets[frame.url]
        mapped = source.map_answer(frame.frame.encode(), symbols, tick_ns, frame.recv_ns)
        assert [price.symbol for price in mapped.prices] == [symbols[mint] for mint in batch]
    tick_urls = {frame.url for frame in frames[: len(per_tick)]}
    assert tick_urls == set(targets)  # every request of a tick, once


def test_a_recording_needs_ticks_and_a_cadence(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ticks >= 1 and cadence_s > 0, got 0 and 1"):
        write_recording(
            SOURCE_DEFS["jupiter"],
            DEFAULT_TOKENS,
            tmp_path / "x.jsonl",
            start_ns=START_NS,
            ticks=0,
            cadence_s=1,
            base_url="http://127.0.0.1:1",
            answer_body=SESSIONS["jupiter"],
        )
