"""Data quality: what the hot tier is missing (`marketstream quality report`) and refilling
it from the exchanges' REST APIs (`marketstream backfill`).

Pure computation (gaps, completeness, rate limits, rendering) lives apart from the modules
that ask QuestDB, Redis, an ingest process's `/metrics` or an exchange.
"""
