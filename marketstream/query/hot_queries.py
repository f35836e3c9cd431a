"""Hot-tier reads from QuestDB over its PostgreSQL wire protocol: latest prices, OHLCV, the
latest instrument metadata, and any record type without array columns by time range (trades,
quotes, liquidations, open interest, polled source prices, ...).

Every value a caller passes travels as a bound parameter; the SQL text holds only names from
our own specs and a fixed whitelist of intervals, so no input can change a statement. Inputs
are checked before any SQL runs, and a bad one raises `QueryInputError` with one line naming
the input and what was expected.

Timestamps are read as `cast(ts AS LONG)`: psycopg turns QuestDB's TIMESTAMP_NS into a
`datetime`, which stops at microseconds. Timestamp parameters are bound as int8, which
QuestDB compares to a TIMESTAMP_NS column as nanoseconds (a smaller integer type would be
parsed as a date string).
"""

from __future__ import annotations

import calendar
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Generic, Literal, Self, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg.types.numeric import Int8

from marketstream.closing import Closing
from marketstream.config import redact_url
from marketstream.errors import ConfigError, MarketStreamError, ServiceError
from marketstream.schemas.columns import INSTRUMENTS, PRICES, QUOTES, SPECS, TRADES, TableSpec
from marketstream.schemas.instruments import EXCHANGES, FEEDS, SOURCES, parse_symbol
from marketstream.schemas.records import Candle, Instrument, Kind, Quote, Record, Trade
from marketstream.tiers.questdb_tables import OHLCV_1M_VIEW

# QuestDB's PG wire accepts one user, `pg.user`/`pg.password` in its server.conf or the
# QDB_PG_USER/QDB_PG_PASSWORD variables of its process: the client reads the same names, so
# one pair of variables configures both ends. QuestDB ships with admin/quest.
PG_USER_ENV: Final = "QDB_PG_USER"
PG_PASSWORD_ENV: Final = "QDB_PG_PASSWORD"  # noqa: S105 - the variable's name, not a secret
DEFAULT_PG_USER: Final = "admin"
DEFAULT_PG_PASSWORD: Final = "quest"  # noqa: S105 - QuestDB's documented default

NS_PER_S: Final = 1_000_000_000
INTERVALS: Final[dict[str, int]] = {
    "1s": NS_PER_S,
    "1m": 60 * NS_PER_S,
    "5m": 300 * NS_PER_S,
    "1h": 3600 * NS_PER_S,
    "1d": 86_400 * NS_PER_S,
}
VIEW_INTERVALS: Final[dict[str, str]] = {"1m": OHLCV_1M_VIEW}
DEFAULT_TRADES_LIMIT: Final = 10_000
MAX_TRADES_LIMIT: Final = 1_000_000
MAX_NS: Final = 2**63 - 1
# An epoch integer below this (1973-03-03) is almost surely seconds, ms or µs, not ns.
MIN_EPOCH_NS_TEXT: Final = 10**17

CandleSource = Literal["auto", "trades"]
R = TypeVar("R", bound=Record)


class QueryInputError(MarketStreamError, ValueError):
    """A query argument is not acceptable; the message names it and what was expected."""


@dataclass(frozen=True, slots=True)
class LatestPrice:
    """The newest price of one instrument, as Redis's `price:<exchange>:<symbol>` key has it.

    `price` is the last trade price; before any trade, the quote's last price or the bid/ask
    mid. `ts` is the exchange time (ns) of the newer of the last trade and the last quote.
    For a polled source (`exchange` is its name) it is the last polled price and its tick.
    """

    exchange: str
    symbol: str
    price: float
    ts: int
    bid: float | None = None
    ask: float | None = None


# --- input checks: pure, so the CLI and the API reject the same inputs the same way -------


def check_exchange(exchange: str) -> str:
    """A stream owner's name: an exchange, or a polled source (whose records carry its name in
    their `exchange` column)."""
    if exchange not in FEEDS:
        raise QueryInputError(
            f"exchange {_show(exchange)} is not known: expected an exchange "
            f"({', '.join(EXCHANGES)}) or a source ({', '.join(SOURCES)})"
        )
    return exchange


def check_symbol(symbol: str) -> str:
    try:
        return parse_symbol(symbol).symbol
    except (ValueError, TypeError):
        raise QueryInputError(
            f"symbol {_show(symbol)} is not normalized: expected BASE-QUOTE, BASE-QUOTE-PERP "
            "or BASE-QUOTE-YYYYMMDD in upper case, e.g. BTC-USDT, BTC-USDT-PERP or "
            "BTC-USD-20250328"
        ) from None


def check_interval(interval: str) -> int:
    """The interval's length in ns; only whitelisted intervals ever reach SQL."""
    step = INTERVALS.get(interval) if isinstance(interval, str) else None
    if step is None:
        raise QueryInputError(
            f"interval {_show(interval)} is not supported: expected one of {', '.join(INTERVALS)}"
        )
    return step


def check_range(start_ns: int, end_ns: int) -> tuple[int, int]:
    for name, value in (("start", start_ns), ("end", end_ns)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NS:
            raise QueryInputError(
                f"{name} {_show(value)} is not a time: expected int nanoseconds since the epoch"
            )
    if start_ns >= end_ns:
        raise QueryInputError(
            f"start {format_ns(start_ns)} is not before end {format_ns(end_ns)}: "
            "expected start < end"
        )
    return start_ns, end_ns


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TRADES_LIMIT:
        raise QueryInputError(
            f"limit {_show(limit)} is out of range: expected an integer from 1 to "
            f"{MAX_TRADES_LIMIT}"
        )
    return limit


def parse_limit(text: str) -> int:
    """A `--limit` argument: a positive integer up to MAX_TRADES_LIMIT."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()):
        raise QueryInputError(
            f"limit {_show(text)} is not a number: expected an integer from 1 to {MAX_TRADES_LIMIT}"
        )
    return check_limit(int(stripped))


_ISO_RE: Final = re.compile(
    r"^(?P<main>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)"
    r"(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(text: str, name: str = "time") -> int:
    """ISO-8601 (`2025-11-20T10:00:00.5Z`; no offset means UTC) or epoch ns, to int ns.

    Up to nine fractional digits are kept exactly, which `datetime` alone cannot do.
    """
    text = text.strip()
    if text.isascii() and text.isdigit():
        value = int(text)
        if value < MIN_EPOCH_NS_TEXT:
            raise QueryInputError(
                f"{name} {_show(text)} looks like seconds or milliseconds: expected epoch "
                "nanoseconds (19 digits) or ISO-8601 such as 2025-11-20T10:00:00Z"
            )
        if value > MAX_NS:
            raise QueryInputError(f"{name} {_show(text)} is beyond the int64 nanosecond range")
        return value
    match = _ISO_RE.match(text)
    try:
        if match is None or (match["offset"] and len(match["main"]) == 10):
            raise ValueError(text)
        moment = datetime.fromisoformat(match["main"].replace(" ", "T"))
    except ValueError:
        raise QueryInputError(
            f"{name} {_show(text)} is not a time: expected ISO-8601 such as "
            "2025-11-20T10:00:00Z or epoch nanoseconds"
        ) from None
    seconds = calendar.timegm(moment.timetuple()) - _offset_seconds(match["offset"])
    value = seconds * NS_PER_S + int((match["fraction"] or "").ljust(9, "0"))
    if not 0 <= value <= MAX_NS:
        raise QueryInputError(f"{name} {_show(text)} is outside 1970 to 2262")
    return value


def _offset_seconds(offset: str | None) -> int:
    if offset is None or offset == "Z":
        return 0
    digits = offset[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:]) * 60
    return -seconds if offset[0] == "-" else seconds


def format_ns(ns: int) -> str:
    """Int ns as ISO-8601 UTC with all nine fractional digits: `2025-11-20T10:00:00.000000001Z`."""
    seconds, fraction = divmod(ns, NS_PER_S)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def bar_ceil(ns: int, step: int) -> int:
    """The first bar open at or after ns; bars are aligned to the UTC calendar.

    Every supported interval divides a day, and Unix time has no leap seconds, so epoch
    multiples are calendar boundaries (minutes, hours, UTC midnight).
    """
    return -(-ns // step) * step


def _show(value: object, limit: int = 48) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- connection -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgTarget:
    """Where and as whom to connect; `endpoint` never holds the password, so errors may show it."""

    conninfo: str
    endpoint: str


def pg_target(url: str, environ: Mapping[str, str] | None = None) -> PgTarget:
    """The `questdb_pg` URL plus credentials, which the recorded endpoint never holds.

    The URL's own user and password win, then $QDB_PG_USER/$QDB_PG_PASSWORD, then QuestDB's
    defaults; ConfigError when the URL has no host and port.
    """
    env = os.environ if environ is None else environ
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        raise ConfigError(
            f"questdb_pg endpoint {_show(redact_url(url))} is not valid: "
            "expected postgresql://host:port/qdb"
        ) from None
    host, port, dbname = params.get("host"), params.get("port"), params.get("dbname") or "qdb"
    if not host or not port:
        raise ConfigError(
            f"questdb_pg endpoint {_show(redact_url(url))} has no host or port: "
            "expected postgresql://host:port/qdb"
        )
    params["user"] = params.get("user") or env.get(PG_USER_ENV) or DEFAULT_PG_USER
    params["password"] = params.get("password") or env.get(PG_PASSWORD_ENV) or DEFAULT_PG_PASSWORD
    params["dbname"] = dbname
    conninfo = make_conninfo("", **{k: str(v) for k, v in params.items()})
    return PgTarget(conninfo=conninfo, endpoint=f"postgresql://{host}:{port}/{dbname}")


def _one_line(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary if exc.diag is not None else None
    return " ".join((primary or str(exc)).split())


# --- SQL: composed once from spec names and whitelisted tokens, never from input ------------


def _select_list(spec: TableSpec) -> sql.Composed:
    parts: list[sql.Composable] = []
    for column in spec.columns:
        name = sql.Identifier(column.name)
        if column.kind is Kind.LEVELS:
            raise TypeError(f"{spec.table}.{column.name}: arrays are not read over PG wire here")
        parts.append(
            sql.SQL("cast({} AS LONG) {}").format(name, name)
            if column.kind is Kind.TIMESTAMP
            else name
        )
    return sql.SQL(", ").join(parts)


def _latest_sql(spec: TableSpec) -> sql.Composed:
    return sql.SQL(
        "SELECT {columns} FROM {table} WHERE exchange = %s AND symbol = %s "
        "LATEST ON ts PARTITION BY symbol"
    ).format(columns=_select_list(spec), table=sql.Identifier(spec.table))


_LATEST_TRADE: Final = _latest_sql(TRADES)
_LATEST_QUOTE: Final = _latest_sql(QUOTES)
_NEWEST_TRADE_TS: Final = sql.SQL(
    "SELECT cast(ts AS LONG) FROM {table} WHERE exchange = %s AND symbol = %s "
    "LATEST ON ts PARTITION BY symbol"
).format(table=sql.Identifier(TRADES.table))


def order_keys(spec: TableSpec) -> tuple[str, ...]:
    """Time, then the rest of the dedup keys: one instrument's rows in one total order, the
    same in every tier (`trade_id` for trades, side, price and size for liquidations)."""
    rest = (k for k in spec.dedup_keys if k not in (spec.timestamp, "exchange", "symbol"))
    return (spec.timestamp, *rest)


def _range_sql(spec: TableSpec) -> sql.Composed:
    return sql.SQL(
        "SELECT {columns} FROM {table} WHERE exchange = %s AND symbol = %s AND ts >= %s "
        "AND ts < %s ORDER BY {order} LIMIT %s"
    ).format(
        columns=_select_list(spec),
        table=sql.Identifier(spec.table),
        order=sql.SQL(", ").join(sql.Identifier(k) for k in order_keys(spec)),
    )


# Ordered by every order key, trades included (by time alone, the trades of one timestamp
# came in QuestDB's scan order, which a later read need not repeat: a cursor resuming
# within a timestamp then skipped some and repeated others). Every spec but instruments
# (metadata, read newest per instrument) and those with arrays (books: the PG wire does not
# carry them; `TieredQueries.range_table` reads them), so a new record type is read too.
_RANGES: Final[dict[TableSpec, sql.Composed]] = {
    spec: _range_sql(spec)
    for spec in SPECS
    if spec is not INSTRUMENTS and all(c.kind is not Kind.LEVELS for c in spec.columns)
}


def range_spec(record_type: type[object]) -> TableSpec:
    """The spec of a record type read by time range over PG wire (every type but books,
    whose arrays `TieredQueries.range_table` reads, and instruments)."""
    for spec in _RANGES:
        if spec.cls is record_type:
            return spec
    raise TypeError(f"no range reader for {record_type.__name__}")


@dataclass(frozen=True, slots=True)
class RangeQuery(Generic[R]):
    """One instrument's records of one type (`Trade`, `Liquidation`, `Price`, ...) with
    start_ns <= ts < end_ns, at most `limit` (the earliest). Checked when built, so every
    reader, and every piece a reader cuts of it, takes it as it is."""

    record_type: type[R]
    exchange: str
    symbol: str
    start_ns: int
    end_ns: int
    limit: int = DEFAULT_TRADES_LIMIT

    def __post_init__(self) -> None:
        range_spec(self.record_type)
        check_exchange(self.exchange)
        object.__setattr__(self, "symbol", check_symbol(self.symbol))  # frozen; as normalized
        check_range(self.start_ns, self.end_ns)
        check_limit(self.limit)

    @property
    def spec(self) -> TableSpec:
        return range_spec(self.record_type)


_LATEST_INSTRUMENTS: Final = sql.SQL(
    "SELECT {columns} FROM {table}{where} LATEST ON ts PARTITION BY exchange, symbol"
)
# The newest `price` of each instrument in a table that has one (trades, polled prices).
_LATEST_PRICES: Final = sql.SQL(
    "SELECT exchange, symbol, cast(ts AS LONG), price FROM {table}{where} "
    "LATEST ON ts PARTITION BY exchange, symbol"
)
_LATEST_QUOTE_PRICES: Final = sql.SQL(
    "SELECT exchange, symbol, cast(ts AS LONG), bid_px, ask_px, last_px FROM {table}{where} "
    "LATEST ON ts PARTITION BY exchange, symbol"
)
_BAR_COLUMNS: Final = sql.SQL("cast(ts AS LONG) ts, open, high, low, close, volume, trades")
_SAMPLED: Final[dict[str, sql.Composed]] = {
    interval: sql.SQL(
        "SELECT {bar} FROM ("
        "SELECT ts, first(price) open, max(price) high, min(price) low, last(price) close, "
        "sum(size) volume, count() trades FROM {table} "
        "WHERE exchange = %s AND symbol = %s AND ts >= %s AND ts < %s "
        "SAMPLE BY {interval} ALIGN TO CALENDAR) ORDER BY ts"
    ).format(bar=_BAR_COLUMNS, table=sql.Identifier(TRADES.table), interval=sql.SQL(interval))
    for interval in INTERVALS
}
_FROM_VIEW: Final[dict[str, sql.Composed]] = {
    interval: sql.SQL(
        "SELECT {bar} FROM {view} "
        "WHERE exchange = %s AND symbol = %s AND ts >= %s AND ts < %s ORDER BY ts"
    ).format(bar=_BAR_COLUMNS, view=sql.Identifier(view))
    for interval, view in VIEW_INTERVALS.items()
}

Param = str | Int8


def instrument_conditions(
    exchange: str | None, symbol: str | None
) -> tuple[list[sql.Composable], list[Param]]:
    """`exchange = %s` and `symbol = %s` for the filters given, with their checked values."""
    conditions: list[sql.Composable] = []
    params: list[Param] = []
    if exchange is not None:
        conditions.append(sql.SQL("exchange = %s"))
        params.append(check_exchange(exchange))
    if symbol is not None:
        conditions.append(sql.SQL("symbol = %s"))
        params.append(check_symbol(symbol))
    return conditions, params


class HotQueries(Closing):
    """Queries on the QuestDB hot tier over one PG-wire connection (not thread-safe).

    `clock` (int ns) decides which candles are closed; tests pass a fixed one.
    """

    def __init__(
        self,
        connection: psycopg.Connection[TupleRow],
        *,
        endpoint: str,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._connection = connection
        self.endpoint = endpoint
        self._clock = clock

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        environ: Mapping[str, str] | None = None,
        connect_timeout_s: int = 5,
        clock: Callable[[], int] = time.time_ns,
    ) -> Self:
        """Connect to the `questdb_pg` endpoint; ServiceError naming it when it does not answer."""
        target = pg_target(url, environ)
        try:
            connection = psycopg.connect(
                target.conninfo, autocommit=True, connect_timeout=max(2, connect_timeout_s)
            )
        except psycopg.Error as exc:
            reason = _connect_reason(exc)
            if "password" in reason or "authentication" in reason:
                raise ServiceError(
                    f"QuestDB PG wire at {target.endpoint} refused the credentials ({reason}): "
                    f"set {PG_USER_ENV} and {PG_PASSWORD_ENV}"
                ) from None
            raise ServiceError(
                f"QuestDB PG wire at {target.endpoint} unreachable: {reason}"
            ) from None
        return cls(connection, endpoint=target.endpoint, clock=clock)

    def close(self) -> None:
        self._connection.close()

    # --- latest -----------------------------------------------------------------------------

    def latest_trade(self, exchange: str, symbol: str) -> Trade | None:
        """The newest trade of one instrument (LATEST ON reads partitions newest first)."""
        params = [check_exchange(exchange), check_symbol(symbol)]
        found = self._typed(Trade, TRADES, self._fetch(_LATEST_TRADE, params))
        return found[0] if found else None

    def latest_quote(self, exchange: str, symbol: str) -> Quote | None:
        """The newest best bid/offer of one instrument; None when it has none."""
        params = [check_exchange(exchange), check_symbol(symbol)]
        found = self._typed(Quote, QUOTES, self._fetch(_LATEST_QUOTE, params))
        return found[0] if found else None

    def latest_prices(
        self, exchange: str | None = None, symbol: str | None = None
    ) -> list[LatestPrice]:
        """The latest price of every instrument (or of one exchange/symbol), sorted by name:
        from trades and quotes, and the polled sources' `prices`."""
        conditions, params = instrument_conditions(exchange, symbol)
        where: sql.Composable = sql.SQL("")
        if conditions:
            where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        trades: list[TupleRow] = []
        for spec in (TRADES, PRICES):  # sources' prices never share a name with trades
            query = _LATEST_PRICES.format(table=sql.Identifier(spec.table), where=where)
            trades += self._fetch(query, params)
        quotes = self._fetch(
            _LATEST_QUOTE_PRICES.format(table=sql.Identifier(QUOTES.table), where=where), params
        )
        return _merge_prices(trades, quotes)

    # --- ranges -----------------------------------------------------------------------------

    def trades(
        self,
        exchange: str,
        symbol: str,
        start_ns: int,
        end_ns: int,
        *,
        limit: int = DEFAULT_TRADES_LIMIT,
    ) -> list[Trade]:
        """Trades with start_ns <= ts < end_ns in time order, at most `limit` (the earliest)."""
        return self.records(RangeQuery(Trade, exchange, symbol, start_ns, end_ns, limit))

    def records(self, query: RangeQuery[R]) -> list[R]:
        """The query's records, in `order_keys` order (trades by time)."""
        q = query
        params: list[Param] = [
            q.exchange,
            q.symbol,
            Int8(q.start_ns),
            Int8(q.end_ns),
            Int8(q.limit),
        ]
        return self._typed(q.record_type, q.spec, self._fetch(_RANGES[q.spec], params))

    def ohlcv(
        self,
        exchange: str,
        symbol: str,
        interval: str,
        start_ns: int,
        end_ns: int,
        *,
        source: CandleSource = "auto",
    ) -> list[Candle]:
        """Candles built from trades for the bars that open in [start_ns, end_ns), in order.

        Bars are aligned to the UTC calendar; a bar with no trade is absent. `source="auto"`
        reads 1m bars from the materialized view `trades_ohlcv_1m`, which QuestDB refreshes
        right after each write to `trades` (so its newest bar may trail by that refresh), and
        samples the other intervals from `trades`; `"trades"` samples every interval from
        `trades`. A bar is closed once its end is at
        or before now or the newest trade of the instrument.
        """
        exchange, symbol = check_exchange(exchange), check_symbol(symbol)
        step = check_interval(interval)
        start_ns, end_ns = check_range(start_ns, end_ns)
        if source not in ("auto", "trades"):
            raise QueryInputError(f"source {_show(source)} is not known: expected auto or trades")
        # Whole bars only: trades from the first bar open at or after start up to the first
        # bar open at or after end, which is the bar range the view answers for [start, end).
        low, high = bar_ceil(start_ns, step), min(bar_ceil(end_ns, step), MAX_NS)
        if low >= high:
            return []
        from_view = source == "auto" and interval in _FROM_VIEW
        query = _FROM_VIEW[interval] if from_view else _SAMPLED[interval]
        params: list[Param] = [exchange, symbol, Int8(low), Int8(high)]
        rows = self._fetch(query, params, view=VIEW_INTERVALS[interval] if from_view else None)
        if not rows:
            return []
        closed_until = self._clock()
        if rows[-1][0] + step > closed_until:  # the last bar may still be forming
            newest = self._fetch(_NEWEST_TRADE_TS, [exchange, symbol])
            if newest:
                closed_until = max(closed_until, int(newest[0][0]))
        return [
            Candle(
                exchange,
                symbol,
                interval,
                int(ts),
                float(open_),
                float(high_),
                float(low_),
                float(close),
                float(volume),
                int(count),
                closed=ts + step <= closed_until,
            )
            for ts, open_, high_, low_, close, volume, count in rows
        ]

    # --- instruments ------------------------------------------------------------------------

    def instruments(self, exchange: str | None = None) -> list[Instrument]:
        """The newest metadata row of every instrument (of one exchange), by exchange, symbol."""
        conditions, params = instrument_conditions(exchange, None)
        where: sql.Composable = sql.SQL("")
        if conditions:
            where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        query = _LATEST_INSTRUMENTS.format(
            columns=_select_list(INSTRUMENTS), table=sql.Identifier(INSTRUMENTS.table), where=where
        )
        found = self._typed(Instrument, INSTRUMENTS, self._fetch(query, params))
        return sorted(found, key=lambda i: (i.exchange, i.symbol))

    # --- plumbing ---------------------------------------------------------------------------

    def _fetch(
        self, query: sql.Composed, params: Sequence[Param], *, view: str | None = None
    ) -> list[TupleRow]:
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall()
        except psycopg.OperationalError as exc:
            raise ServiceError(
                f"QuestDB PG wire at {self.endpoint} unreachable: {_one_line(exc)}"
            ) from None
        except psycopg.Error as exc:
            reason = _one_line(exc)
            if view is not None and "does not exist" in reason:
                raise ServiceError(
                    f"QuestDB at {self.endpoint} has no materialized view {view}: create it "
                    "with marketstream.tiers.questdb_tables.create_views_sql(), or query "
                    "with source='trades'"
                ) from None
            if "does not exist" in reason:
                raise ServiceError(
                    f"QuestDB at {self.endpoint}: {reason}: nothing has reached the hot tier "
                    "yet (the hot writer creates the tables)"
                ) from None
            raise ServiceError(f"QuestDB at {self.endpoint} rejected a query: {reason}") from None

    @staticmethod
    def _typed(record_type: type[R], spec: TableSpec, rows: list[TupleRow]) -> list[R]:
        # The select list follows the spec's columns, which follow the record's fields.
        assert spec.cls is record_type
        return [record_type(*row) for row in rows]


def _connect_reason(exc: psycopg.Error) -> str:
    # libpq's message spans lines ("connection failed: ... \n\tIs the server running ...").
    text = " ".join(str(exc).split())
    return text.removeprefix("connection failed: ")


def _merge_prices(trades: list[TupleRow], quotes: list[TupleRow]) -> list[LatestPrice]:
    latest: dict[tuple[str, str], LatestPrice] = {}
    for exchange, symbol, ts, price in trades:
        latest[(exchange, symbol)] = LatestPrice(exchange, symbol, float(price), int(ts))
    for exchange, symbol, ts, bid, ask, last_px in quotes:
        trade = latest.get((exchange, symbol))
        if trade is None:
            price = float(last_px) if last_px is not None else (bid + ask) / 2
            latest[(exchange, symbol)] = LatestPrice(exchange, symbol, price, int(ts), bid, ask)
        else:
            latest[(exchange, symbol)] = LatestPrice(
                exchange, symbol, trade.price, max(trade.ts, int(ts)), bid, ask
            )
    return [latest[key] for key in sorted(latest)]
