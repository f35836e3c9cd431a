"""What every venue shares: the venue contract, the mapper's items and errors, field parsing,
the channel check, joined native symbols and the simulated book of generated sessions."""
