"""MarketStream: a tiered crypto market data pipeline (Redis Streams -> QuestDB -> ClickHouse -> Parquet)."""

__version__ = "0.1.0"
