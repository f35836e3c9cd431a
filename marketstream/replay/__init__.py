"""The replay server, a development and test tool: one recording served over a local WebSocket
in its exchange's protocol. `recording` is the file format (shared with the recorder),
`dialect` the base each venue's protocol implements, `source` the checked recording and its
pacing, `server` the server. The venues provide the dialects; the caller passes them in.

A polled source's recording (REST answers only) is served over HTTP instead:
`rest_recording` checks and indexes it, `faults` is the deterministic fault plan, and
`rest_server` the keep-alive HTTP server; the caller passes the source's fault shape in."""
