"""Processes that compose several parts: `pipeline` (ingest and the hot writer on one event
loop, `marketstream run`) and `demo` (recordings replayed through that pipeline).

They sit above the parts and below the CLI: the CLI parses and prints, these wire and run.
"""
