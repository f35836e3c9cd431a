"""Long-running writers: the hot writer (Redis Streams consumer group -> QuestDB).

`hot_writer` is the daemon (claiming, batching, acknowledging, /metrics and /healthz);
`hot_writer_redis` and `hot_writer_questdb` are its two sides, `hot_writer_metrics` its counters.
"""
