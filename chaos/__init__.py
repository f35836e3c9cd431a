"""The chaos and soak suite (`make chaos`, `python -m chaos --minutes N`): the whole local
pipeline as real processes, killed and restarted at seeded random moments, then compared row
by row with what went in.

What runs (each its own process, on loopback ports): Redis, QuestDB and the warm gateway from
`marketstream services start` in `.marketstream-chaos`; one `marketstream replay-server` per
exchange, replaying a long generated session at recorded pace; `marketstream ingest`; two
`marketstream write-hot` (consumers `chaos-w1`, `chaos-w2`); and rounds of `marketstream
generate` (past days, exchange `binance`) + `marketstream archive --once`. `streams.maxlen` is
small and trimming runs often, so the streams are cut all the time.

Faults (each kind at least twice in the default run, one at a time, at seeded random moments):
SIGKILL + restart of ingest, of each writer, of Redis (same port, same AOF: a process crash
loses nothing Redis acknowledged, as with compose's AOF; a host crash could lose the last
second, which this suite does not simulate), of QuestDB (same ports, its WAL) and of a running
archiver; QuestDB frozen (SIGSTOP) for 30 s; every exchange connection dropped
(`GET /_control/drop` on the replay servers, which resume where the connection stopped).

What is compared, and why that is the right expected set:
- *Hot path, exact.* A live exchange never re-sends, so frames that reached a killed ingest
  but were not yet published are lost by nature, not by the pipeline. The guarantee starts
  where Redis acknowledged an entry. A tap (consumer group `chaos-tap`, created on every
  stream at id 0 before ingest starts, so trimming keeps what it has not read) records every
  entry ingest published, with its stream id. Collapsed by the table's dedup keys (the last
  entry in stream order wins, as an upsert would) it is exactly what QuestDB must hold:
  compared row by row over every column, `recv_ts` included. lost = a key QuestDB lacks;
  duplicated = a key QuestDB holds twice, or one nobody published; altered = same key, any
  column different (a candle bar must hold its last update).
- *Ingest input, attributed.* The replayed sessions are normalized offline with the same
  mappers (`normalize_recording`) and compared with what the tap saw: trades and funding by
  their keys, quotes as a multiset, candles by their last update, every column but
  `recv_ts` (the receive clock of a replay differs from the recording's by design). Books are
  left out: after a reconnect a book restarts from a snapshot and its cadence, so which
  `seq` are published depends on when the connection broke. Records missing here are
  reported per cause; with no ingest kill they must be zero.
- *Archive, exact.* Generated history is deterministic (`marketstream generate`, same seed,
  same rows): every generated day is read back from the tier its age puts it in (QuestDB,
  ClickHouse or Parquet) and compared row by row over every column; a day must be in
  exactly one tier.

The summary (stdout and `chaos/results.json`) holds records in, faults by kind, lost,
duplicated, altered, stalls (the longest time without QuestDB progress while work was
outstanding, after the last fault), and the peak RSS of each process.
"""
