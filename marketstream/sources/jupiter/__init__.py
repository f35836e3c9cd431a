"""Jupiter's Price API v3 (`GET /price/v3?ids=...`): USD prices of Solana tokens by mint."""
