"""Bybit v5 spot and USDT linear perpetuals (`bybit`): `markets` the two endpoints, `mapper`
the pure frame mapper, `feed` the subscribe rules, `replay` the replay server's dialect,
`sessions` generated v5 sessions, `venue` the venue as registered."""
