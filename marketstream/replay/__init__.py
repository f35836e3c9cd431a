"""The replay server, a development and test tool: one recording served over a local WebSocket
in its exchange's protocol. `recording` is the file format (shared with the recorder),
`dialect` the base each venue's protocol implements, `source` the checked recording and its
pacing, `server` the server. The venues provide the dialects; the caller passes them in."""
