"""The warm gateway: the one process that opens the chdb engine directory and serves it over
ClickHouse's HTTP interface (`marketstream warm-server`).

`server` is that process (HTTP framing, sessions, statements); `policy` what it refuses, as a
ClickHouse server would. `services/gateway_process.py` starts it as a local service.
"""
