"""Processes that compose several parts: `processes` (`marketstream run`: ingest and N hot
writers as child processes under `supervisor`) and `demo` (recordings replayed through them,
which `make bench` measures too: there is no second, in-process pipeline).

They sit above the parts and below the CLI: the CLI parses and prints, these wire and run.
"""
