"""Coinbase Exchange (`coinbase`): `symbols` (product ids), `mapper` the pure frame mapper,
`feed` the subscribe rules, `replay` the replay server's dialect, `venue` the venue as
registered."""
