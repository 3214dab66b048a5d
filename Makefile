# Every target creates the virtual environment it needs, from nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test server venv clean schema bench bench-quick bench-events bench-cost bench-dashboard drills soak browser screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/heartbeats demo

server: $(STAMP)
	$(BIN)/heartbeats server

# Headless Chromium for the dashboard's browser tests: Debian's package, installed where missing
# (Playwright drives it; no browser download).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The house rules first (seconds), then every test.
test: $(STAMP) browser
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

schema: $(STAMP)
	$(BIN)/heartbeats schema > manifest.schema.json

# Benchmarks (bench/run.py, method in docs/performance.md): full run, and a quick one under 5 minutes.
bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick

# 2,000 events for 50 cases through `heartbeats serve` and one worker: events/s, event -> run, one run per case.
bench-events: $(STAMP)
	$(BIN)/python bench/event_flood.py

# 100 ticks of one heartbeat's dedicated thread, with and without prompt caching: tokens and USD per tick.
bench-cost: $(STAMP)
	$(BIN)/python bench/cost_per_tick.py

# The dashboard's heartbeat list with 10,000 heartbeats installed: install, pages, search, walk (median/p95/max).
bench-dashboard: $(STAMP)
	$(BIN)/python bench/dashboard_list.py

clean:
	rm -rf $(VENV) .data

# Crash drills: SIGKILL the worker mid pre-filter / LLM call / tool turn, restart the dev server.
drills: $(STAMP)
	$(BIN)/python -m drills

# 1,000 heartbeats for 10 minutes on a dev server: ticks due / run / failures / duplicates.
soak: $(STAMP)
	$(BIN)/python -m drills.soak --heartbeats 1000 --minutes 10

# The dashboard's screenshots under docs/screenshots/, from a scratch `heartbeats demo`.
screenshots: $(STAMP) browser
	$(BIN)/python docs/screenshots/take.py
