"""Everything about each exchange, one package per venue; `registry` lists them.

A venue package holds its pure mapper, its feed rules, its REST calls and its replay dialect;
`base` holds what every venue shares. Nothing here imports the ingest runner, the tiers or
the replay server: they import the venues, never the reverse.
"""
