"""Pipeline configuration: `configs/pipeline.yaml` overlaid with `MARKETSTREAM_*` variables
(`MARKETSTREAM_<SECTION>__<KEY>`, read by pydantic-settings).

The file is data, validated once at start so that a wrong value stops the process with one
line naming the key, the value, where it came from and what was expected. It is found from
any folder: `--config`, else `$MARKETSTREAM_CONFIG`, else `./configs/pipeline.yaml`, else the
same file installed with the package (`marketstream/defaults/pipeline.yaml`), so an installed
`marketstream` runs anywhere.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import (
    DERIVATIVE_CHANNELS,
    Channel,
    Exchange,
    Feed,
    Source,
    parse_symbol,
)
from marketstream.secret_names import names_a_secret

DEFAULT_CONFIG = Path("configs/pipeline.yaml")
# configs/pipeline.yaml itself, installed as package data (a link to it in a checkout).
PACKAGED_CONFIG = Path(__file__).resolve().parent / "defaults" / "pipeline.yaml"
ENV_PREFIX = "MARKETSTREAM_"
ENV_SEPARATOR = "__"
CONFIG_PATH_ENV = "MARKETSTREAM_CONFIG"


def _symbol(value: str) -> str:
    parse_symbol(value)
    return value


def _url(*schemes: str) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is not None and not value.startswith(schemes):
            raise ValueError(f"expected a URL starting with {' or '.join(schemes)}")
        return value

    return AfterValidator(check)


Symbol = Annotated[str, AfterValidator(_symbol)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExchangeConfig(_Model):
    """One exchange connector: where it connects and what it subscribes to."""

    enabled: bool = True
    url: Annotated[str, _url("wss://", "ws://")]
    # REST base: instrument metadata (`instruments`), and order book snapshots where the feed
    # sends deltas only (Binance, OKX). None: neither is fetched for this exchange.
    rest_url: Annotated[str | None, _url("https://", "http://")] = None
    symbols: tuple[Symbol, ...] = Field(min_length=1)
    channels: tuple[Channel, ...] = Field(min_length=1)
    # `marketstream ingest --group NAME` runs only the exchanges of one group, so that a
    # deployment can spread exchanges over processes; one process runs all by default.
    group: str = Field(default="default", pattern=r"^[a-z0-9_-]+$")


# A token as a source names it (a Solana mint): base58, 32 to 44 characters.
TOKEN_ID_RE = r"^[1-9A-HJ-NP-Za-km-z]{32,44}$"  # noqa: S105 (a pattern, not a secret)
_TOKEN_SYMBOL = re.compile(r"^[A-Z0-9]+$")
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SourceConfig(_Model):
    """One polled REST price source: where, how often, within what limits, which tokens.

    The API key is read from the environment variable named by `api_key_env`, never from a
    file. `max_rps` is what the account may send (every retry and hedge counts), so a
    cadence the limit cannot carry is refused at start rather than missing ticks forever."""

    enabled: bool = True
    url: Annotated[str | None, _url("https://", "http://")] = None  # None: the API's own
    cadence_s: float = Field(default=1.0, gt=0, le=86_400)  # one poll per token per tick
    # A tick is met when an answer for it arrives within this many seconds of the tick
    # (retries and hedges happen inside it); None: twice the cadence.
    deadline_s: float | None = Field(default=None, gt=0)
    hedge_after_s: float | None = Field(default=0.5, gt=0)  # a second request if none answered
    timeout_s: float = Field(default=5.0, gt=0)  # one request at most
    retry_initial_s: float = Field(default=0.1, gt=0)  # after a 5xx or a network error
    max_rps: float = Field(default=1.0, gt=0)  # requests per second the account allows
    burst: int = Field(default=1, ge=1)  # requests sent back to back at most
    api_key_env: str | None = Field(default=None, pattern=_ENV_NAME)
    # The account's API credits a month (Birdeye's compute units); a cadence whose ticks would
    # spend more is refused at start. None: not checked (Jupiter's plans count requests only).
    credits_per_month: int | None = Field(default=None, gt=0)
    # Stop polling after this many ticks (a bounded capture, the demo); None: poll forever.
    max_ticks: int | None = Field(default=None, gt=0)
    symbols: dict[str, Annotated[str, Field(pattern=TOKEN_ID_RE)]] = Field(min_length=1)
    group: str = Field(default="default", pattern=r"^[a-z0-9_-]+$")

    @field_validator("symbols")
    @classmethod
    def _one_symbol_per_token(cls, symbols: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for symbol, token in symbols.items():
            if not _TOKEN_SYMBOL.match(symbol):
                raise ValueError(
                    f"symbol {symbol!r} is not upper-case letters and digits (e.g. SOL, JITOSOL)"
                )
            if token in seen:
                raise ValueError(f"{symbol} and {seen[token]} are the same token {token}")
            seen[token] = symbol
        return symbols

    @property
    def deadline(self) -> float:
        return self.deadline_s if self.deadline_s is not None else 2 * self.cadence_s


class IngestConfig(_Model):
    """Connector behaviour shared by every exchange."""

    book_depth: int = Field(default=25, gt=0, le=1000)
    book_interval_ms: int = Field(default=1000, gt=0)  # top-N book cadence per symbol
    # Deltas a book waiting for its snapshot keeps, by receive time (MAX_BUFFERED at most).
    book_buffer_s: float = Field(default=30.0, gt=0)
    max_future_skew_ms: int = Field(default=5000, ge=0)
    stale_after_s: float = Field(default=30.0, gt=0)  # no frame for this long: reconnect
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    publish_batch: int = Field(default=1000, gt=0)  # records per Redis round trip at most
    publish_interval_ms: float = Field(default=5.0, gt=0)  # longest a record waits to be sent
    max_pending: int = Field(default=100_000, gt=0)  # buffered records before reads pause
    snapshot_interval_s: float = Field(default=0.5, ge=0)  # pause between REST snapshots
    # Open interest polled over REST where no stream sends it (Binance USD-M), per symbol.
    open_interest_poll_s: float = Field(default=60.0, gt=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9101, ge=0, le=65535)  # 0: pick a free port


class InstrumentsConfig(_Model):
    """Instrument metadata over REST: fetched at ingest start, then refreshed on a schedule."""

    enabled: bool = True  # false: the cached or shipped catalog only, nothing fetched
    refresh_interval_s: float = Field(default=3600.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)  # one GET at most
    retries: int = Field(default=2, ge=0)  # per URL, on network errors, 429 and 5xx
    retry_initial_s: float = Field(default=0.5, gt=0)  # the pause doubles from here


class StreamsConfig(_Model):
    """Redis stream bounds; trimming never drops what a consumer group has not acknowledged."""

    maxlen: int = Field(default=1_000_000, gt=0)
    dlq_maxlen: int = Field(default=100_000, gt=0)
    trim_interval_s: float = Field(default=5.0, gt=0)
    # Also SET the version-1 latest-price keys (`price:<exchange>:<symbol>`) beside
    # `price:{<exchange>}:<symbol>`, so readers of the old names keep working while they move.
    legacy_price_keys: bool = True


class HotConfig(_Model):
    """The hot writer: Redis Streams into QuestDB through the consumer group `hot-writer`."""

    # The consumer group the writers share; ingest declares it on every stream it writes.
    group: str = Field(default="hot-writer", pattern=r"^[A-Za-z0-9_.-]+$")
    batch_size: int = Field(default=20_000, gt=0)  # entries per batch (write) at most
    # The longest an entry waits for its batch. Each flush is a QuestDB WAL transaction per
    # table, and QuestDB's cost is mostly per transaction: at 2,000 records/s it used 1.24
    # cores at 25 ms and 0.43 at 250 ms (`make bench`'s paced 2,000/s run; p99 98 / 475 ms).
    batch_wait_ms: float = Field(default=250.0, gt=0)
    # ...unless a read found nothing new for this long: a burst (polled prices) is written
    # then. Under 100 ms, ingest's pauses on a saturated 2-core machine (25-100 ms) read as
    # quiet, and max-speed replays made twice the transactions (63-67 against 34-37).
    batch_quiet_ms: float = Field(default=100.0, gt=0)
    claim_idle_ms: int = Field(default=30_000, gt=0)  # pending this long: another writer takes it
    refresh_interval_s: float = Field(default=2.0, gt=0)  # rediscover streams, refresh lag gauges
    retry_initial_s: float = Field(default=0.1, gt=0)  # QuestDB or Redis down: retry after this...
    retry_max_s: float = Field(default=5.0, gt=0)  # ...doubling up to this
    flush_timeout_s: float = Field(default=10.0, gt=0)  # one ILP/HTTP request at most
    flush_max_bytes: int = Field(default=4_194_304, gt=0)  # a larger batch takes several flushes
    max_deliveries: int = Field(default=5, gt=0)  # an entry delivered more often goes to md:dlq
    # The exchanges (hash tags) this writer serves; empty: all. Each tag to exactly one set
    # of writers: writers with different lists split the streams between them.
    exchanges: tuple[Feed, ...] = ()
    # I/N: of the streams it serves, this writer owns those whose (exchange, table) hashes to
    # I of N, so one stream is never split between writers (`run --writers N` sets it per
    # child; compose's writers set it on the command line). 1/1: all.
    shard: str = Field(default="1/1", pattern=r"^\d+/\d+$")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9102, ge=0, le=65535)  # 0: pick a free port
    # `run`/`demo`: how many writer processes; writer i (from 0) serves /metrics on
    # metrics_port + i * metrics_port_step (compose's 9102, 9112, ...), or a free port if 0
    writers: int = Field(default=1, ge=1, le=64)
    metrics_port_step: int = Field(default=10, ge=1)

    @field_validator("shard")
    @classmethod
    def _shard_in_range(cls, value: str) -> str:
        index, count = (int(part) for part in value.split("/"))
        if not 1 <= index <= count:
            raise ValueError(f"expected I/N with 1 <= I <= N, got {value}")
        return value


class SupervisorConfig(_Model):
    """`run` and `demo` supervise ingest and the writers as child processes: a child that dies
    is restarted after a pause doubling from backoff_initial_s; one that dies more than
    max_restarts times within window_s ends the run (non-zero, the cause logged)."""

    max_restarts: int = Field(default=5, ge=0)
    window_s: float = Field(default=60.0, gt=0)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=10.0, gt=0)
    stop_timeout_s: float = Field(default=30.0, gt=0)  # SIGTERM, then SIGKILL after this


class RuntimeConfig(_Model):
    """Python's cyclic garbage collector in the hot-path processes (ingest, normalize,
    write-hot, replay-server, demo). With Python's thresholds (a collection every 700 allocations) a
    writer's batch of 20,000 entries set off hundreds of collections that traversed the batch
    being built: over a third of the writer's CPU on a backlog, a sixth of ingest's in the
    pipeline bench. `gc_freeze` leaves start-up's objects (modules, configuration) out of every
    collection; `gc_thresholds` are `gc.set_threshold`'s three; null keeps Python's."""

    gc_freeze: bool = True
    gc_thresholds: tuple[int, int, int] | None = (50_000, 20, 100)

    @field_validator("gc_thresholds")
    @classmethod
    def _positive_first(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and (value[0] < 1 or min(value) < 0):
            raise ValueError(f"expected [gen0 >= 1, gen1 >= 0, gen2 >= 0], got {list(value)}")
        return value


class Horizons(_Model):
    """Age limits of the hot (QuestDB) and warm (ClickHouse) tiers, in days."""

    hot_days: int = Field(default=7, gt=0)
    warm_days: int = Field(default=365, gt=0)

    @model_validator(mode="after")
    def _warm_after_hot(self) -> Horizons:
        if self.warm_days <= self.hot_days:
            raise ValueError(
                f"expected warm_days ({self.warm_days}) greater than hot_days ({self.hot_days})"
            )
        return self


class ArchiveConfig(_Model):
    """The archiver: partitions past a horizon move down a tier once a night."""

    schedule_utc: str = Field(default="02:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # HH:MM
    batch_days: int = Field(default=31, gt=0)  # days per QuestDB -> ClickHouse batch at most...
    batch_rows: int = Field(default=2_000_000, gt=0)  # ...and about this many rows (memory)
    # How long a move waits for QuestDB to apply what was committed to a table's WAL (and
    # to apply the drop): a table that does not catch up fails its days, kept for next run.
    wal_apply_timeout_s: float = Field(default=300.0, gt=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9103, ge=0, le=65535)  # 0: pick a free port

    @field_validator("schedule_utc", mode="before")
    @classmethod
    def _sexagesimal(cls, value: object) -> object:
        """YAML 1.1 reads an unquoted 02:30 (say, from the environment) as the base-60
        number 150: take it back as the time it was written as."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            hours, minutes = divmod(value, 60)
            return f"{hours:02d}:{minutes:02d}"
        return value


class QualityConfig(_Model):
    """`marketstream quality report` and `marketstream backfill`."""

    min_completeness: float = Field(default=0.99, ge=0, le=1)  # share of minutes with a trade
    backfill_weight_share: float = Field(default=0.25, gt=0, le=1)  # of the REST weight limit
    backfill_max_retries: int = Field(default=5, ge=0)  # per request: 429/418, 5xx, network
    backfill_max_wait_s: float = Field(default=120.0, gt=0)  # a longer Retry-After stops it
    rest_timeout_s: float = Field(default=10.0, gt=0)
    # A polled source's tick is expected by the report once its deadline (sources.*.deadline_s)
    # and this much more have passed: the time to publish, write and apply its row.
    tick_grace_s: float = Field(default=5.0, ge=0)


class Endpoints(_Model):
    """Service addresses; None means the ones `marketstream services start` recorded."""

    redis: Annotated[
        str | None,
        _url("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://"),
    ] = None
    questdb_http: Annotated[str | None, _url("http://", "https://")] = None
    questdb_pg: Annotated[str | None, _url("postgresql://", "postgres://")] = None
    questdb_ilp: Annotated[str | None, _url("tcp://")] = None
    clickhouse: Annotated[str | None, _url("chdb://", "http://", "https://")] = None
    cold: str | None = None


class S3Config(_Model):
    endpoint_url: Annotated[str | None, _url("http://", "https://")] = None
    region: str = "us-east-1"


_SERVER_CONF_KEY = re.compile(r"[a-z][a-z0-9]*(\.[a-z0-9]+)+")


class QuestDBService(_Model):
    """The QuestDB release run locally: pinned, and checked against its sha256."""

    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    java_opts: tuple[str, ...] = ()
    # What QuestDB writes to its log. INFO logs every WAL commit and ILP request: at tens of
    # thousands of records/s its logging thread took a quarter of QuestDB's CPU (`make bench`).
    log_levels: str = Field(
        default="ERROR,CRITICAL,ADVISORY",
        pattern=r"^(DEBUG|INFO|ERROR|CRITICAL|ADVISORY)(,(DEBUG|INFO|ERROR|CRITICAL|ADVISORY))*$",
    )
    # server.conf settings, handed to QuestDB as QDB_<KEY> variables (one already in the
    # environment wins). configs/pipeline.yaml says which and why.
    server_conf: dict[str, StrictBool | StrictInt | str] = Field(default_factory=dict)

    @field_validator("server_conf", mode="before")
    @classmethod
    def _server_conf_values(cls, value: Any) -> Any:
        """Each value a bool, an int or a string; the message never echoes it (a password
        may be one)."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(item, bool | int | str):
                    raise ValueError(
                        f"the value of {key!r} must be a boolean, an integer or a string"
                    )
        return value

    @field_validator("server_conf")
    @classmethod
    def _server_conf_keys(cls, value: dict[str, bool | int | str]) -> dict[str, bool | int | str]:
        for key in value:
            if not _SERVER_CONF_KEY.fullmatch(key):
                raise ValueError(
                    f"{key!r} is not a QuestDB server.conf key: expected lowercase words "
                    "joined by dots, such as shared.worker.sleep.threshold"
                )
        return value


class WarmGatewayConfig(_Model):
    """Bounds of the local warm gateway (`marketstream warm-server`), as a server has them."""

    max_body_bytes: int = Field(default=256 << 20, gt=0)  # larger request bodies get 413
    max_sessions: int = Field(default=256, gt=0)  # open sessions (and concurrent requests)
    max_session_timeout_s: float = Field(default=3600, gt=0)  # longest session_timeout asked


class ServeConfig(_Model):
    """`marketstream serve`: the HTTP and WebSocket API over every tier, safe by default."""

    enabled: bool = True  # `run` starts serve as a supervised child
    host: str = "127.0.0.1"  # anything but loopback requires the token (see token_env)
    port: int = Field(default=8000, ge=0, le=65535)
    # Prometheus /metrics and /healthz without the token, as every daemon serves them
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9104, ge=0, le=65535)  # 0: pick a free port
    # The environment variable holding the bearer token; set, every route but /healthz needs
    # `Authorization: Bearer <token>`. The token itself never sits in a file.
    token_env: str = Field(default="MARKETSTREAM_API_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers at all
    max_range_days: float = Field(default=31.0, gt=0)  # one range request spans at most this
    default_limit: int = Field(default=1000, gt=0)  # rows per page when no limit is asked
    max_limit: int = Field(default=100_000, gt=0, le=1_000_000)  # rows per page at most
    max_streams_per_client: int = Field(default=8, gt=0)  # open WebSockets per client
    stream_batch: int = Field(default=500, gt=0)  # entries per XREAD on /v1/stream
    replay_max_speed: float = Field(default=1000.0, gt=0)  # /v1/replay's speed factor at most
    # records waiting to be sent per /v1/stream client; a client that lets more pile up is
    # too slow and is closed (1013) rather than the server's memory growing
    stream_queue: int = Field(default=10_000, gt=0)
    replay_page: int = Field(default=5000, gt=0, le=1_000_000)  # rows per tier read on /v1/replay

    @model_validator(mode="after")
    def _default_within_max(self) -> ServeConfig:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"default_limit {self.default_limit} is above max_limit {self.max_limit}: "
                "expected default_limit <= max_limit"
            )
        return self


class ServicesConfig(_Model):
    state_dir: Path = Path(".marketstream")
    cache_dir: Path = Path(".cache")
    start_timeout_s: float = Field(default=90, gt=0)
    questdb: QuestDBService
    warm_gateway: WarmGatewayConfig = WarmGatewayConfig()


class PipelineConfig(_Model):
    exchanges: dict[Exchange, ExchangeConfig]
    sources: dict[Source, SourceConfig] = {}
    ingest: IngestConfig = IngestConfig()
    instruments: InstrumentsConfig = InstrumentsConfig()
    streams: StreamsConfig = StreamsConfig()
    hot: HotConfig = HotConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    horizons: Horizons = Horizons()
    archive: ArchiveConfig = ArchiveConfig()
    quality: QualityConfig = QualityConfig()
    endpoints: Endpoints = Endpoints()
    s3: S3Config = S3Config()
    serve: ServeConfig = ServeConfig()
    services: ServicesConfig

    @field_validator("exchanges")
    @classmethod
    def _perp_only_on_derivatives(
        cls, exchanges: dict[str, ExchangeConfig]
    ) -> dict[str, ExchangeConfig]:
        for name, exchange in exchanges.items():
            derivative = any(parse_symbol(s).derivative for s in exchange.symbols)
            for channel in exchange.channels:
                if channel in DERIVATIVE_CHANNELS and not derivative:
                    raise ValueError(
                        f"{name}: the {channel} channel needs at least one -PERP or "
                        "dated-future symbol"
                    )
        return exchanges

    def enabled_sources(self, group: str | None = None) -> dict[str, SourceConfig]:
        return {
            name: source
            for name, source in self.sources.items()
            if source.enabled and (group is None or source.group == group)
        }

    def enabled_exchanges(self, group: str | None = None) -> dict[str, ExchangeConfig]:
        return {
            name: ex
            for name, ex in self.exchanges.items()
            if ex.enabled and (group is None or ex.group == group)
        }


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Which file a configuration came from, why that one, and the variables laid over it."""

    file: Path
    chosen_by: str  # "--config", "$MARKETSTREAM_CONFIG", "./configs", "package defaults"
    overrides: Mapping[str, str]  # dotted key -> environment variable


def config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path:
    """The file to read (see the module docstring for the order)."""
    return _choose_file(explicit, environ)[0]


def _choose_file(explicit: str | Path | None, environ: Mapping[str, str]) -> tuple[Path, str]:
    if explicit is not None:
        return Path(explicit), "--config"
    if environ.get(CONFIG_PATH_ENV):
        return Path(environ[CONFIG_PATH_ENV]), f"${CONFIG_PATH_ENV}"
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG, "./configs"
    return PACKAGED_CONFIG, "package defaults"


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Read, overlay and validate the configuration; raise ConfigError with one clear line."""
    return load_config_source(path, environ)[0]


def _safe_yaml(text: str) -> Any:
    """`yaml.safe_load` through libyaml where PyYAML has it (its wheels do): the pure-Python
    parser took a seventh of every command's start-up reading configs/pipeline.yaml. A bad
    document is read again by the Python parser, whose error marks the messages name."""
    if yaml.__with_libyaml__:
        try:
            return yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def load_config_source(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[PipelineConfig, ConfigSource]:
    """`load_config`, and where the values came from (for `marketstream config show`)."""
    env = os.environ if environ is None else environ
    file, chosen_by = _choose_file(path, env)
    try:
        raw = _safe_yaml(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {file} not found: pass --config FILE or set {CONFIG_PATH_ENV}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {file} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {file}{where}: not valid YAML") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {file}: expected a mapping of sections at the top level")
    overlay = _EnvOverlay(env)
    sources = overlay.overrides()
    try:
        raw = _merge(raw, overlay())
    except SettingsError as exc:
        raise ConfigError(f"config error in the environment: {exc}") from None
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, sources)) from None
    return config, ConfigSource(file, chosen_by, sources)


class _EnvOverlay(EnvSettingsSource):
    """pydantic-settings' environment source over the sections of PipelineConfig, read from a
    given mapping, with two rules of ours: a complex value (a list, a mapping) is YAML, not
    JSON, so `[BTC-USDT, ETH-USDT]` needs no quotes; and environment names cannot hold `-`,
    so `EXCHANGES__BINANCE_USDM` is the exchange `binance-usdm`. Scalars stay text for the
    model to read, so an unquoted `02:30` is the time written, never YAML's base-60 150."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(
            _SettingsView,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_SEPARATOR,
            env_parse_none_str="null",
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Only MARKETSTREAM_<SECTION>__<KEY>: MARKETSTREAM_CONFIG, MARKETSTREAM_RECORDINGS, ...
        # are not configuration keys, and a whole section is not set from one variable.
        keys = {k: v for k, v in self._environ.items() if ENV_SEPARATOR in k}
        return parse_env_vars(keys, False, False, "null")

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        try:
            return _safe_yaml(value)
        except yaml.YAMLError:
            return value  # the model names it with what it expected

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        for dotted in self.overrides():  # a section PipelineConfig does not have: an error,
            values.setdefault(dotted.split(".")[0], {})  # not a variable silently ignored
        return values

    def explode_env_vars(
        self, field_name: str, field: FieldInfo, env_vars: Mapping[str, str | None]
    ) -> dict[str, Any]:
        values = super().explode_env_vars(field_name, field, env_vars)
        if field_name == "exchanges":
            return {_exchange_key(key): value for key, value in values.items()}
        return values

    def overrides(self) -> dict[str, str]:
        """Dotted key -> the variable that sets it, for errors and `config show`."""
        sources: dict[str, str] = {}
        for name in sorted(self._environ):
            if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
                continue  # MARKETSTREAM_CONFIG, MARKETSTREAM_RECORDINGS, ... are not config keys
            path = [s.lower() for s in name[len(ENV_PREFIX) :].split(ENV_SEPARATOR)]
            if path[0] == "exchanges" and len(path) > 1:
                path[1] = _exchange_key(path[1])
            sources[".".join(path)] = name
        return sources


# PipelineConfig's sections as settings fields, which `_EnvOverlay` reads variables for; never
# instantiated: PipelineConfig validates the file and the variables together.
_SECTIONS: dict[str, Any] = {
    name: (field.annotation, None) for name, field in PipelineConfig.model_fields.items()
}
_SettingsView = create_model("_SettingsView", __base__=BaseSettings, **_SECTIONS)


def _exchange_key(segment: str) -> str:
    return segment.replace("_", "-")


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` laid over it, mapping into mapping."""
    merged = dict(base)
    for key, value in overlay.items():
        below = merged.get(key)
        if isinstance(below, dict) and isinstance(value, Mapping):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


_VALUE_ERROR_PREFIX = "Value error, "


def _describe(exc: ValidationError, file: Path, sources: Mapping[str, str]) -> str:
    errors = exc.errors()
    first: ErrorDetails = errors[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    origin = f"config file {file}"
    for overridden, variable in sources.items():
        if (
            key == overridden
            or f"{key}.".startswith(f"{overridden}.")
            or (overridden.startswith(f"{key}."))
        ):
            origin = f"environment {variable}"
    if first["type"] == "extra_forbidden":
        what = "unknown key"
    elif first["type"] == "missing":
        what = "missing required key"
    elif isinstance(first["input"], dict | list):  # a whole section: the message says enough
        what = first["msg"].removeprefix(_VALUE_ERROR_PREFIX)
    elif first["msg"].startswith(_VALUE_ERROR_PREFIX):  # our validators say what they expect
        what = f"value {first['input']!r}: {first['msg'].removeprefix(_VALUE_ERROR_PREFIX)}"
    else:
        what = f"value {first['input']!r}: expected {first['msg'].removeprefix('Input should be ')}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"config error in {origin}: {key}: {what}{more}"


def redact_url(dsn: str) -> str:
    """A URL with its password replaced by ***: what messages, logs and views may show."""
    try:
        parts = urllib.parse.urlsplit(dsn)
        password = parts.password
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", dsn)
    if password is None:
        return dsn
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def shown_config(config: PipelineConfig) -> dict[str, Any]:
    """The configuration as data, with the credentials in endpoint URLs and in QuestDB's
    settings redacted."""
    data = config.model_dump(mode="json")
    data["endpoints"] = {
        key: redact_url(value) if isinstance(value, str) else value
        for key, value in data["endpoints"].items()
    }
    questdb = data["services"]["questdb"]
    questdb["server_conf"] = {
        key: "***" if names_a_secret(key) else value
        for key, value in questdb["server_conf"].items()
    }
    return data
