"""What every polled source provides (`source.py`)."""
