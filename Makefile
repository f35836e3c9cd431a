# MarketStream developer entry points. `make test` and `make run` install what they need.
PYTHON ?= python3
VENV   ?= .venv
CACHE  ?= .cache
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PIP_CACHE_DIR := $(abspath $(CACHE))/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: deps python-deps redis questdb-jar test lint typecheck unit run demo bench bench-deps clean \
        instruments-snapshot

deps: python-deps redis questdb-jar

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

python-deps: $(STAMP)

# Redis comes from Debian's packages; installed only when missing.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing Debian's redis-server"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

# The QuestDB jar from Maven Central, pinned and sha256-checked (configs/pipeline.yaml).
questdb-jar: $(STAMP)
	$(BIN)/marketstream services install

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: deps lint typecheck
	$(BIN)/pytest

run: deps
	$(BIN)/marketstream run

# The hot path offline: the recordings shipped in tests/data/recordings (or RECORDINGS=DIR), with
# generated sessions for Kraken, OKX and Bybit, through replay-server, ingest and the hot writer.
demo: deps
	$(BIN)/marketstream demo $(if $(RECORDINGS),--recordings $(RECORDINGS))

# The instrument snapshot shipped in the package (marketstream/defaults/instruments.jsonl),
# rebuilt from the recorded instrument answers (or INSTRUMENT_ANSWERS="FILE ...") by every venue
# that parses them, keeping the instruments configs/pipeline.yaml configures.
INSTRUMENT_ANSWERS ?= $(wildcard tests/data/captures/*-rest.jsonl)
instruments-snapshot: $(STAMP)
	$(BIN)/marketstream instruments snapshot --all $(INSTRUMENT_ANSWERS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Bench-only packages (cryptofeed, run side by side with our normalization), pinned apart from
# requirements.lock and installed only here: `make test` never needs them. cryptofeed builds
# from source; PIP_CONSTRAINT pins its build tools. A failed install does not stop the bench:
# the cryptofeed suite then reports why (pip's output is kept in $(VENV)/bench-deps.log).
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): requirements-bench.txt requirements-bench-build.txt requirements.lock $(STAMP)
	@if PIP_CONSTRAINT=$(abspath requirements-bench-build.txt) \
	  $(PY) -m pip install -q -r requirements-bench.txt >$(VENV)/bench-deps.log 2>&1; \
	then touch $@; \
	else echo "bench-deps: pip install -r requirements-bench.txt failed:"; tail -n 5 $(VENV)/bench-deps.log; fi

bench-deps: $(BENCH_STAMP)

bench: deps bench-deps
	$(PY) -m bench.run

# The chaos and soak suite (chaos/): the whole local pipeline as processes, killed and
# restarted at seeded random moments, then compared row by row; one JSON summary, also in
# chaos/results.json. MINUTES=N soaks longer (default 10, about 15 minutes in all).
.PHONY: chaos
chaos: deps
	$(PY) -m chaos $(if $(MINUTES),--minutes $(MINUTES)) $(if $(SEED),--seed $(SEED))
