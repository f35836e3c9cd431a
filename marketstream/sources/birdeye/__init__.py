"""Birdeye's multi-price endpoint (`GET /defi/multi_price`): USD prices of Solana tokens."""
