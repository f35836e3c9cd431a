"""Scripts run by `make test-exports` in the venv of the library they import (Freqtrade,
VectorBT): each reads one of our exports with that library and prints what it found as JSON
for the test, in our venv, to compare with the source. They import nothing of ours."""
