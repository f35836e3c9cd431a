"""A moving-average cross on 1m bars: only there to make freqtrade trade over an export."""

from freqtrade.strategy import IStrategy


class SmaCross(IStrategy):
    timeframe = "1m"
    minimal_roi = {"0": 10}
    stoploss = -0.99
    startup_candle_count = 20

    def populate_indicators(self, frame, metadata):
        frame["fast"] = frame["close"].rolling(5).mean()
        frame["slow"] = frame["close"].rolling(20).mean()
        return frame

    def populate_entry_trend(self, frame, metadata):
        frame.loc[frame["fast"] > frame["slow"], "enter_long"] = 1
        return frame

    def populate_exit_trend(self, frame, metadata):
        frame.loc[frame["fast"] < frame["slow"], "exit_long"] = 1
        return frame
