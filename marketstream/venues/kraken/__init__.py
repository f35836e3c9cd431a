"""Kraken spot (`kraken`): `symbols`, `mapper` the pure frame mapper (v2 and v1), `checksum`
the book checksum, `feed` the subscribe rules, `replay` the replay server's dialect,
`sessions` generated v2 sessions, `venue` the venue as registered."""
