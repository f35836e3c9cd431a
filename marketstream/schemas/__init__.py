"""Normalized records and all that derives from them (imports nothing else): `records` the
classes, `columns` their table specs (`SPECS`), `validation` the boundary checks, `codec` the
stream encoding, `arrow` the Arrow layout, `checksum` row checksums across tiers,
`instruments` the exchange names and the symbol grammar."""
