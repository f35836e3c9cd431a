"""Binance on real captured frames and REST answers (tests/data/captures; see PROVENANCE.md):
the exchangeInfo metadata of both markets, a real USD-M `!forceOrder@arr` frame (MIT,
tiagosiebler/binance), the suspect Tardis forceOrder literal and a quarterly contract's
markPriceUpdate (MPL-2.0, tardis-node). Expected values read off the raw text by hand."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from marketstream.replay.recording_format import RecordedFrame, read_recording
from marketstream.schemas.records import Funding, Instrument, Liquidation, OpenInterest
from marketstream.venues.base.mapper import FrameError
from marketstream.venues.base.venue import Subscription
from marketstream.venues.binance.venue import BINANCE, BINANCE_USDM
from tests.venues.binance.instruments import SPOT_INSTRUMENTS, USDM_INSTRUMENTS
from tests.venues.conftest import assert_valid

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"
MS = 1_000_000


def _frames(name: str) -> list[RecordedFrame]:
    return list(read_recording(CAPTURES / name))


def _by_native(instruments: tuple[Instrument, ...]) -> dict[str, Instrument]:
    return {i.native_symbol: i for i in instruments}


# --- instrument metadata -------------------------------------------------------------------


def test_spot_exchange_info() -> None:
    spot = _by_native(SPOT_INSTRUMENTS)
    assert len(spot) == 13  # the cut answer's 13 symbols, all TRADING
    # BTCUSDT: PRICE_FILTER tickSize "0.01000000", LOT_SIZE stepSize "0.00001000"
    assert spot["BTCUSDT"] == Instrument(
        "binance", "BTC-USDT", 1633998511132921000, "BTCUSDT", "spot", "BTC", "USDT", "USDT",
        1.0, 1.0, 0.01, 0.00001, None, "trading",
    )  # fmt: skip
    # names come from baseAsset/quoteAsset, not from a list of quotes: ADAEUR is ADA-EUR
    assert (spot["ADAEUR"].symbol, spot["LRCBTC"].symbol) == ("ADA-EUR", "LRC-BTC")
    assert (spot["NKNUSDT"].tick_size, spot["NKNUSDT"].lot_size) == (0.0001, 1.0)


def test_usdm_exchange_info_with_the_quarterly_contract() -> None:
    usdm = _by_native(USDM_INSTRUMENTS)
    # 122 symbols; BTCSTUSDT has contractType "" (no kind to give it) and is left out
    assert len(usdm) == 121
    assert "BTCSTUSDT" not in usdm
    quarterly = usdm["BTCUSDT_210924"]
    # CURRENT_QUARTER, deliveryDate 1632470400000 (2021-09-24 08:00 UTC), tickSize 0.1,
    # stepSize 0.001, marginAsset USDT; a USD-M contract is 1 BTC
    assert quarterly == Instrument(
        "binance-usdm", "BTC-USDT-20210924", 1626992740175661000, "BTCUSDT_210924",
        "linear_future", "BTC", "USDT", "USDT", 1.0, 1.0, 0.1, 0.001,
        1632470400000 * MS, "trading",
    )  # fmt: skip
    # the perpetual's deliveryDate 4133404800000 (year 2100) is a placeholder: no expiry
    perpetual = usdm["BTCUSDT"]
    assert (perpetual.symbol, perpetual.kind, perpetual.expiry, perpetual.tick_size) == (
        "BTC-USDT-PERP", "linear_perpetual", None, 0.01,
    )  # fmt: skip
    assert usdm["ETHUSDT_210924"].symbol == "ETH-USDT-20210924"


def test_instrument_urls() -> None:
    assert BINANCE.instrument_urls is not None
    assert BINANCE_USDM.instrument_urls is not None
    assert BINANCE.instrument_urls("https://api.binance.com/") == [
        "https://api.binance.com/api/v3/exchangeInfo"
    ]
    assert BINANCE_USDM.instrument_urls("https://fapi.binance.com") == [
        "https://fapi.binance.com/fapi/v1/exchangeInfo"
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"code":-1121,"msg":"Invalid symbol."}', "error -1121: Invalid symbol."),
        (b'{"symbols":{}}', "symbols {} is not a list of objects"),
        (b"[]", "expected a JSON object"),
    ],
)
def test_a_malformed_exchange_info_is_refused_naming_the_url(body: bytes, reason: str) -> None:
    assert BINANCE.parse_instruments is not None
    with pytest.raises(FrameError, match=f"^binance: https://x/api/v3/exchangeInfo: .*{reason}"):
        BINANCE.parse_instruments("https://x/api/v3/exchangeInfo", body, 1)


# --- liquidations --------------------------------------------------------------------------

IOTX = Instrument(  # IOTXUSDT was listed after the 2021-07 exchangeInfo; a USD-M contract is 1
    "binance-usdm", "IOTX-USDT-PERP", 1, "IOTXUSDT", "linear_perpetual", "IOTX", "USDT", "USDT",
    1.0, 1.0, 0.00001, 1.0, None, "trading",
)  # fmt: skip


def test_the_real_force_order_is_the_filled_liquidation() -> None:
    (frame,) = _frames("binance-usdm-forceorder.jsonl")
    mapper = BINANCE_USDM.make_mapper((), (*USDM_INSTRUMENTS, IOTX))
    (liquidation,) = mapper(frame.frame, frame.recv_ns)
    assert_valid(liquidation, frame.recv_ns)
    # S SELL (a long liquidated); z 3661 filled (l 962 was only the last fill, q 3661 the
    # order) at ap 0.06669 (p 0.06606 the limit price); notional 3661 x 0.06669 = 244.15 USDT
    assert liquidation == Liquidation(
        "binance-usdm", "IOTX-USDT-PERP", 1634653599180 * MS, frame.recv_ns, "sell", 0.06669,
        3661.0,
    )  # fmt: skip


def test_the_inconsistent_tardis_force_order_is_refused() -> None:
    """l 0.015 (last fill) > z 0.014 (all fills): impossible, so the frame is refused."""
    (frame,) = _frames("binance-usdm-forceorder-tardis.jsonl")
    mapper = BINANCE_USDM.make_mapper((), USDM_INSTRUMENTS)
    reason = r"last fill l 0\.015 exceeds the accumulated fill z 0\.014"
    with pytest.raises(FrameError, match=reason):
        mapper(frame.frame, frame.recv_ns)


def test_an_unfilled_force_order_is_no_liquidation_yet() -> None:
    (frame,) = _frames("binance-usdm-forceorder.jsonl")
    message = orjson.loads(frame.frame)
    message["data"]["o"].update({"X": "NEW", "l": "0", "z": "0"})
    mapper = BINANCE_USDM.make_mapper((), (IOTX,))
    assert mapper(orjson.dumps(message), frame.recv_ns) == []


def test_liquidations_subscribe_to_force_orders() -> None:
    (message,) = BINANCE_USDM.subscribe_messages(
        Subscription(("BTC-USDT-PERP", "BTC-USDT-20210924"), ("liquidations", "open_interest"))
    )
    # open interest is polled over REST: no stream
    assert orjson.loads(message)["params"] == [
        "btcusdt@forceOrder",
        "btcusdt_210924@forceOrder",
    ]


# --- a quarterly contract's funding stream -------------------------------------------------


def test_the_quarterly_mark_price_has_no_next_funding() -> None:
    (frame,) = _frames("binance-usdm-quarterly-markprice.jsonl")
    quarterly = Instrument(  # BTCBUSD_210129 expired before the 2021-07 exchangeInfo
        "binance-usdm", "BTC-BUSD-20210129", 1, "BTCBUSD_210129", "linear_future", "BTC",
        "BUSD", "BUSD", 1.0, 1.0, 0.1, 0.001, 1611907200000 * MS, "trading",
    )  # fmt: skip
    (funding,) = BINANCE_USDM.make_mapper((), (quarterly,))(frame.frame, frame.recv_ns)
    assert_valid(funding, frame.recv_ns)
    # p 31799.27730000 mark, i 31307.03400000 index, r 0.00000000, T 0: no next funding
    assert funding == Funding(
        "binance-usdm", "BTC-BUSD-20210129", 1609830121004 * MS, 0.0, 31799.2773, 31307.034,
        None,
    )  # fmt: skip


# --- open interest over REST ---------------------------------------------------------------


def test_open_interest_answer() -> None:
    assert BINANCE_USDM.open_interest_url is not None
    assert BINANCE_USDM.parse_open_interest is not None
    assert BINANCE.open_interest_url is None
    url = BINANCE_USDM.open_interest_url("https://fapi.binance.com/", "BTC-USDT-20210924")
    assert url == "https://fapi.binance.com/fapi/v1/openInterest?symbol=BTCUSDT_210924"
    body = b'{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}'
    instrument = _by_native(USDM_INSTRUMENTS)["BTCUSDT"]
    record = BINANCE_USDM.parse_open_interest(body, "BTC-USDT-PERP", 5, instrument)
    assert record == OpenInterest(
        "binance-usdm", "BTC-USDT-PERP", 1589437530011 * MS, 5, 10659.509, None
    )
    with pytest.raises(FrameError, match="answer for 'BTCUSDT', expected 'ETHUSDT'"):
        BINANCE_USDM.parse_open_interest(body, "ETH-USDT-PERP", 5, None)
    with pytest.raises(FrameError, match="error -1121: Invalid symbol"):
        BINANCE_USDM.parse_open_interest(
            b'{"code":-1121,"msg":"Invalid symbol."}', "BTC-USDT-PERP", 5, instrument
        )
    with pytest.raises(FrameError, match="BTC-USDT-PERP: no instrument metadata"):
        BINANCE_USDM.parse_open_interest(body, "BTC-USDT-PERP", 5, None)
