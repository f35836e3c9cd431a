"""Binance spot (`binance`) and USD-M futures (`binance-usdm`): `markets` holds what differs,
`mapper` the pure frame mapper, `feed` the subscribe rules, `rest` the book snapshots and
past trades, `replay` the replay server's dialect, `venue` the two venues as registered."""
