# Two commands for a fresh machine (see README):
#   make run    validate -> fit -> HTML report for the shipped evidence base (reports/index.html)
#   make test   the test suite (installs Debian's chromium for the browser test when missing)
# And one for contributors and CI:
#   make check  ruff format --check, ruff check and mypy (the gates CI runs)
# Both create a local virtual environment in .venv and install what they need.

VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Wait up to 10 minutes for another process's dpkg/apt lock instead of failing at once.
APT    := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get) -o DPkg::Lock::Timeout=600

.PHONY: run test check graphviz chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

graphviz:
	@command -v dot >/dev/null 2>&1 || { $(APT) update -qq && $(APT) install -y -qq --no-install-recommends graphviz; }

chromium:
	@command -v chromium >/dev/null 2>&1 || { $(APT) update -qq && $(APT) install -y -qq --no-install-recommends chromium; }

run: $(STAMP) graphviz
	$(BIN)/peerevidence run

test: $(STAMP) graphviz chromium
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) reports/fits reports/*.html reports/outcomes reports/*.json reports/*.csv
