# Every target installs what it needs first, so each works as the first command on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt constraints.txt pyproject.toml sandbox/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install browser test test-fast lint demo up cluster sandbox bench bench-scale bench-reconcile clean

install: $(STAMP)

# the pinned requirements, then the repository's two distributions, editable: the provider clever_attendance
# (pyproject.toml: what docker-compose's image deploys) and the sandbox clever_attendance_sandbox (sandbox/: the
# stand-ins, the demo and the test kit; what make demo, up, cluster, sandbox, the tests and the benchmarks run)
$(STAMP): requirements.txt constraints.txt pyproject.toml sandbox/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . -e sandbox
	$(PY) -m pip check  # every dependency the two pyproject.toml declare is among the pinned requirements
	rm -f $(VENV)/.installed-* && touch $@

# Debian's chromium and its chromedriver, for the board's browser test; installed only where either is missing
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	   $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver)

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint browser
	$(PY) -m pytest

# pure functions, the retry policy, the rate limiter, windows, latency, config errors: no servers
test-fast: lint
	$(PY) -m pytest -m fast

demo: $(STAMP)
	$(PY) -m clever_attendance_sandbox.demo

up: $(STAMP)
	$(PY) -m clever_attendance_sandbox.demo.up

cluster: $(STAMP)
	$(PY) -m clever_attendance_sandbox.demo.cluster

sandbox: $(STAMP)
	$(PY) -m clever_attendance_sandbox serve --clever-port 8081 --upload-port 8082

bench: $(STAMP)
	$(PY) bench/clever_page.py
	$(PY) bench/clever_extract.py
	$(PY) bench/transform.py
	$(PY) bench/upload_slots.py
	$(PY) bench/board.py

# a real scheduler and triggerer with 10 to 1000 districts: parse, poll, CPU by process and freshness figures
# (the 1,000-district first sync alone takes about an hour on 2 cores; `--runs 10,200` for a shorter run)
bench-scale: $(STAMP)
	$(PY) bench/poll_scale.py

# the nightly reconciliation of the sandbox's large district over Clever's retention, twice (about an hour)
bench-reconcile: $(STAMP)
	$(PY) bench/reconcile.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache .hypothesis
