"""Processes that compose several parts: `processes` (`marketstream run`: ingest and N hot
writers as child processes under `supervisor`), `demo` (recordings replayed through them),
and `pipeline` (ingest and a writer on one event loop, for the in-process benchmark).

They sit above the parts and below the CLI: the CLI parses and prints, these wire and run.
"""
