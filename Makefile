# Every target installs what it needs first, so each works as the first command on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt constraints.txt | cksum | cut -d' ' -f1)
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins

.PHONY: install test lint demo up cluster sandbox bench clean

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	rm -f $(VENV)/.installed-* && touch $@

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m demo

up: $(STAMP)
	$(PY) -m demo.up

cluster: $(STAMP)
	$(PY) -m demo.cluster

sandbox: $(STAMP)
	$(PY) -m sandbox serve --clever-port 8081 --upload-port 8082

bench: $(STAMP)
	$(PY) bench/clever_page.py
	$(PY) bench/clever_extract.py
	$(PY) bench/transform.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache .hypothesis
