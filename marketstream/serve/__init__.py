"""The HTTP and WebSocket API over every tier (`marketstream serve`)."""
