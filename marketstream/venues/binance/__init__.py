"""Binance spot (`binance`) and USD-M futures (`binance-usdm`): `markets` holds what differs,
`instruments` the exchangeInfo metadata, `mapper` the pure frame mapper, `feed` the subscribe
rules, `rest` the book snapshots and past trades, `open_interest` the polled USD-M open
interest, `replay` the replay server's dialect, `venue` the two venues as registered."""
