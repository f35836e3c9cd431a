"""Bybit v5 spot, linear and inverse contracts (`bybit`): `markets` the three endpoints,
`instruments` the metadata, `mapper` the frame mapper, `feed` the subscribe rules, `replay`
the replay server's dialect, `sessions` generated v5 sessions, `venue` the venue as
registered."""
