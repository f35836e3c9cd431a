"""Instrument metadata: what each exchange says its instruments are (kind, contract size,
ticks, expiry), fetched over REST, cached on disk, shipped as a snapshot for offline use."""
