"""OKX v5 spot and perpetual swaps (`okx`): `symbols` (instrument ids), `mapper` the pure
frame mapper, `checksum` the book checksum, `feed` endpoints and subscribe rules, `rest` the
book snapshots, `replay` the replay server's dialect, `sessions` generated v5 sessions,
`venue` the venue as registered."""
