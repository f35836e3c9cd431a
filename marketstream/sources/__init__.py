"""Polled REST price sources: one folder per source, the shared contract in `base/`.

A source is data and pure functions (request targets, response mapper, answer classifier);
the polling itself (ticks, limits, retries, hedges) is `ingest/polling/`.
"""
