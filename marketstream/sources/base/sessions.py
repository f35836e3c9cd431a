"""Generated answers and REST-only recordings, for the tests, the demo and the bench.

No licensed capture of either price API exists to ship, so answers are generated in each
API's documented shape (each source's `sessions.py` builds its body) from one deterministic
model here: a mean-reverting random walk per token, per tick, from a realistic starting
price for the 15 default tokens, a seeded one for any other token. Same ids, tick and seed:
same bytes, whatever was generated before.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from marketstream.errors import MarketStreamError
from marketstream.replay.recording_format import RecordedFrame
from marketstream.sources.base.source import PolledSource

# (token ids of one request, tick index from 0, tick time ns, seed) -> the answer's body
AnswerBody = Callable[[Sequence[str], int, int, int], bytes]

SOL_MINT: Final = "So11111111111111111111111111111111111111112"
# The default tokens (as in configs/pipeline.yaml `sources.*.symbols`), SYMBOL -> mint.
DEFAULT_TOKENS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "SOL": SOL_MINT,
        "USDC": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        "USDT": "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        "JUP": "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN",
        "BONK": "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263",
        "WIF": "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm",
        "JTO": "jtojtomepa8beP8AuQc6eXt5FriJwfFMwQx2v2f9mCL",
        "PYTH": "HZ1JovNiVvGrGNiiYvEozEVgZ58xaU3RKwX8eACQBCt3",
        "RAY": "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R",
        "ORCA": "orcaEKTdK7LKz57vaAYr9QeNsVEPfiu6QeMU1kektZE",
        "MSOL": "mSoLzYCxHdYgdzU16g5QSh3i5K3z3KZK7ytfqcJm7So",
        "JITOSOL": "J1toso1uCk3RLmjorhTtrVwY9HJ7X8V9yYac6Y7kGCPn",
        "RENDER": "rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof",
        "W": "85VBFQZC9TZkfaptBWjvUw7YbZjy52A6mjtPGjstQAmQ",
        "HNT": "hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux",
    }
)


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What the model needs of a token: its starting USD price, the standard deviation of
    its log price per tick, how strongly it is pulled back to the start per tick (a
    stablecoin strongly), its pool liquidity (USD) and decimals."""

    price: float
    sigma: float
    reversion: float
    liquidity: float
    decimals: int


_STABLE: Final = {"sigma": 0.00005, "reversion": 0.3}
_VOLATILE: Final = {"sigma": 0.0008, "reversion": 0.0005}
_DEFAULT_FACTS: Final[Mapping[str, TokenFacts]] = MappingProxyType(
    {
        DEFAULT_TOKENS[symbol]: TokenFacts(price, liquidity=liquidity, decimals=decimals, **kind)
        for symbol, price, liquidity, decimals, kind in (
            ("SOL", 147.48, 621_679_197.67, 9, _VOLATILE),
            ("USDC", 0.9999, 522_175_174.66, 6, _STABLE),
            ("USDT", 1.0001, 180_455_120.31, 6, _STABLE),
            ("JUP", 0.4056, 48_700_211.5, 6, _VOLATILE),
            ("BONK", 0.00001598, 36_112_408.9, 5, _VOLATILE),
            ("WIF", 0.83, 22_410_067.2, 6, _VOLATILE),
            ("JTO", 1.92, 14_550_903.8, 6, _VOLATILE),
            ("PYTH", 0.14, 9_804_115.4, 6, _VOLATILE),
            ("RAY", 2.61, 31_200_557.0, 6, _VOLATILE),
            ("ORCA", 2.35, 7_903_226.1, 6, _VOLATILE),
            ("MSOL", 190.12, 70_266_439.6, 9, _VOLATILE),
            ("JITOSOL", 181.77, 95_114_302.0, 9, _VOLATILE),
            ("RENDER", 3.74, 5_902_118.3, 8, _VOLATILE),
            ("W", 0.088, 4_012_550.7, 6, _VOLATILE),
            ("HNT", 2.98, 6_288_930.2, 8, _VOLATILE),
        )
    }
)


def _rng(*parts: object) -> random.Random:
    """A generator seeded by `parts` (a string seed: the same on every run and platform)."""
    return random.Random("/".join(map(str, parts)))  # noqa: S311 - made-up prices, no secret


@functools.cache
def token_facts(token: str, seed: int = 0) -> TokenFacts:
    """A default token's facts, or seeded ones for any other id (a price from 1e-6 to 1e3)."""
    known = _DEFAULT_FACTS.get(token)
    if known is not None:
        return known
    rng = _rng("facts", seed, token)
    return TokenFacts(
        price=float(f"{10 ** rng.uniform(-6, 3):.6g}"),
        sigma=rng.uniform(0.0004, 0.003),
        reversion=0.0005,
        liquidity=round(10 ** rng.uniform(4, 8), 2),
        decimals=rng.choice((6, 8, 9)),
    )


class _Walk:
    """One token's log price relative to its start, tick by tick, grown as asked."""

    def __init__(self, token: str, seed: int) -> None:
        self.facts = token_facts(token, seed)
        self._rng = _rng("walk", seed, token)
        self._logs = array("d", [0.0])

    def price(self, tick_index: int) -> float:
        if tick_index < 0:
            raise ValueError(f"tick index {tick_index} is negative")
        logs, facts, gauss = self._logs, self.facts, self._rng.gauss
        while len(logs) <= tick_index:
            logs.append(logs[-1] * (1 - facts.reversion) + gauss(0.0, facts.sigma))
        return facts.price * math.exp(logs[tick_index])


@functools.lru_cache(maxsize=4096)
def _walk(token: str, seed: int) -> _Walk:
    return _Walk(token, seed)


def walk_price(token: str, tick_index: int, seed: int = 0) -> float:
    """The token's USD price at a tick: deterministic in (token, tick, seed)."""
    return _walk(token, seed).price(tick_index)


def change_24h(token: str, tick_index: int, seed: int = 0) -> float:
    """A plausible 24 h change in percent: a seeded base moved by the walk since the start."""
    base = _rng("change", seed, token).uniform(-6.0, 6.0)
    price = walk_price(token, tick_index, seed)
    return base + 100.0 * (price / token_facts(token, seed).price - 1.0)


# --- tokens beyond the defaults, for the 150-token bench --------------------------------------

_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_BASE58[digit])
    leading = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading + "".join(reversed(digits))


def synthetic_tokens(count: int, *, first: int = 16, seed: int = 0) -> dict[str, str]:
    """`count` made-up tokens, SYMBOL -> mint: `TKN016`, `TKN017`, ... (numbered from
    `first`), each mint 32 random-looking bytes in base58 (43-44 characters, as a real mint),
    the same for the same number and seed. Only the replay server prices them."""
    if count < 0:
        raise ValueError(f"token count {count} is negative")
    tokens: dict[str, str] = {}
    for number in range(first, first + count):
        digest = hashlib.sha256(f"marketstream synthetic token {seed} {number}".encode())
        tokens[f"TKN{number:03d}"] = _base58(digest.digest())
    return tokens


def token_set(count: int, *, seed: int = 0) -> dict[str, str]:
    """`count` tokens, SYMBOL -> mint: the default ones first (in their order), then
    synthetic ones (`TKN016`, ...) for the rest, e.g. the bench's 15 and 150."""
    defaults = dict(list(DEFAULT_TOKENS.items())[:count])
    extra = synthetic_tokens(count - len(defaults), first=len(DEFAULT_TOKENS) + 1, seed=seed)
    return defaults | extra


# --- REST-only recordings ----------------------------------------------------------------------

_LATENCY_MS: Final = (40.0, 120.0)  # the generated answers' receive delay after the tick


def write_recording(
    source: PolledSource,
    symbols: Mapping[str, str],
    path: Path | str,
    *,
    start_ns: int,
    ticks: int,
    cadence_s: float,
    base_url: str,
    answer_body: AnswerBody,
    seed: int = 0,
) -> int:
    """Write (replacing) a REST-only recording of `ticks` polls of `symbols` (SYMBOL -> id,
    in config order), one every `cadence_s` from `start_ns`; returns the lines written.

    Each tick holds one line per request, the ids batched as `source.batches` does, so the
    replay server finds every target the poller will ask for: `{"recv_ns": tick + latency,
    "exchange": source.name, "url": base_url + target, "frame": answer}` (the recording
    format of `replay/recording_format.py`), in receive order.
    """
    if ticks < 1 or not cadence_s > 0:
        raise ValueError(f"expected ticks >= 1 and cadence_s > 0, got {ticks} and {cadence_s}")
    cadence_ns = round(cadence_s * 1e9)
    batches = source.batches(list(symbols.values()))
    base = base_url.rstrip("/")
    urls = [base + source.target(batch) for batch in batches]
    latency = _rng("latency", seed, source.name)
    path = Path(path)
    lines = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            for index in range(ticks):
                tick_ns = start_ns + index * cadence_ns
                frames = []
                for batch, url in zip(batches, urls, strict=True):
                    delay_ns = round(latency.uniform(*_LATENCY_MS) * 1e6)
                    recv_ns = tick_ns + min(delay_ns, cadence_ns // 2)
                    body = answer_body(batch, index, tick_ns, seed)
                    frames.append(RecordedFrame(recv_ns, source.name, url, body.decode()))
                frames.sort(key=lambda frame: frame.recv_ns)
                file.write(b"".join(frame.to_json_line() for frame in frames))
                lines += len(frames)
    except OSError as exc:
        raise MarketStreamError(f"cannot write recording {path}: {exc.strerror or exc}") from None
    return lines
