"""Synthetic market history for past days, to exercise the tiers without waiting a year.

`history` makes the records (pure, seeded, one day at a time); `hot_load` writes them into
QuestDB and keeps the truth (rows and key checksum per table and day) to check the tiers by.
Exchange sessions in a venue's wire format are the venue's own (`venues/<name>/sessions.py`).
"""
