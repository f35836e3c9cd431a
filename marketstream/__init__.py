"""MarketStream: a tiered crypto market data pipeline.

Exchange WebSockets -> Redis Streams -> QuestDB (hot) -> ClickHouse (warm) -> Parquet (cold).
"""

__version__ = "0.1.0"
