"""`marketstream serve`: one HTTP and WebSocket API over Redis and every storage tier."""
