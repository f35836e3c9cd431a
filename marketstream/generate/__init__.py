"""Synthetic market history for past days, to exercise the tiers without waiting a year.

`history` makes the records (pure, seeded, one day at a time); `hot_load` writes them into
QuestDB and keeps the truth (rows and key checksum per table and day) to check the tiers by.
`sessions` makes exchange sessions in the wire formats of venues with no shipped capture.
"""
