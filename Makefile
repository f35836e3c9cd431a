# MarketStream developer entry points. `make test` and `make run` install what they need.
PYTHON ?= python3
VENV   ?= .venv
CACHE  ?= .cache
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PIP_CACHE_DIR := $(abspath $(CACHE))/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: deps python-deps bytecode redis questdb-jar test lint typecheck unit run demo bench \
        bench-deps clean instruments-snapshot

deps: python-deps bytecode redis questdb-jar

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

python-deps: $(STAMP)

# Our modules' bytecode, as pip writes it for any package it installs but not for an editable
# one: where PYTHONDONTWRITEBYTECODE is set, every process would compile ~100 modules at
# start (0.08 s of `normalize`'s 0.3). checked-hash: Python hashes the source at each import,
# so an edited file is never run from a stale .pyc, whatever its timestamps say.
bytecode: $(STAMP)
	@$(PY) -m compileall -q --invalidation-mode checked-hash marketstream

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
	rm -rf $(VENV) $(NAUTILUS_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# `marketstream export --to nautilus` needs nautilus_trader in the same Python, and its pins
# (pandas<3, uvloop 0.22) conflict with requirements.lock: .venv-nautilus holds MarketStream
# with nautilus_trader, pinned by requirements-exports-nautilus.lock. `test-nautilus` runs the
# tests marked `nautilus` there (the real catalog read-back and a BacktestNode).
NAUTILUS_VENV  := .venv-nautilus
NAUTILUS_STAMP := $(NAUTILUS_VENV)/.installed
.PHONY: nautilus-env test-nautilus

$(NAUTILUS_STAMP): requirements-exports-nautilus.lock pyproject.toml
	$(PYTHON) -m venv $(NAUTILUS_VENV)
	$(NAUTILUS_VENV)/bin/python -m pip install -q -r requirements-exports-nautilus.lock
	$(NAUTILUS_VENV)/bin/python -m pip install -q --no-deps -e .
	@touch $@

nautilus-env: $(NAUTILUS_STAMP)

test-nautilus: deps nautilus-env
	$(NAUTILUS_VENV)/bin/pytest -m nautilus tests/integration

# Freqtrade and VectorBT read our exports back in venvs of their own (each pinned by its
# requirements-exports-*.lock: their pins conflict with ours, and they are 0.8-1.1 GB);
# `test-exports` runs every library read-back (Freqtrade, VectorBT, then NautilusTrader).
EXPORT_VENVS := $(CACHE)/exports-venvs
.PHONY: test-exports

$(EXPORT_VENVS)/%/.installed: requirements-exports-%.lock
	rm -rf $(EXPORT_VENVS)/$*
	$(PYTHON) -m venv $(EXPORT_VENVS)/$*
	$(EXPORT_VENVS)/$*/bin/python -m pip install -q --prefer-binary -r $<
	@touch $@

test-exports: deps $(EXPORT_VENVS)/freqtrade/.installed $(EXPORT_VENVS)/vectorbt/.installed
	MARKETSTREAM_TEST_FREQTRADE_PYTHON=$(abspath $(EXPORT_VENVS))/freqtrade/bin/python \
	MARKETSTREAM_TEST_VECTORBT_PYTHON=$(abspath $(EXPORT_VENVS))/vectorbt/bin/python \
	  $(BIN)/pytest -m exports tests/integration
	$(MAKE) test-nautilus

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

bench: deps bench-deps nautilus-env
	$(PY) -m bench.run

# The chaos and soak suite (chaos/): the whole local pipeline as processes, killed and
# restarted at seeded random moments, then compared row by row; one JSON summary, also in
# chaos/results.json. MINUTES=N soaks longer (default 10, about 15 minutes in all).
.PHONY: chaos
chaos: deps
	$(PY) -m chaos $(if $(MINUTES),--minutes $(MINUTES)) $(if $(SEED),--seed $(SEED))
