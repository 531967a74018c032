# One entry point for humans and CI. Every target creates the environment it needs (uv sync).
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=

.PHONY: help install browser test test-fast lint typecheck format schemas schemas-check bench bench-gateway bench-versioning bench-github-sync bench-flags bench-loop up run clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

install:  ## create .venv from uv.lock (installs uv from PyPI when missing)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --all-packages --frozen --compile-bytecode

browser:  ## Debian's Chromium for the console's browser tests (Playwright drives it; no download)
	@[ -n "$$CHROMIUM_PATH" ] || command -v chromium >/dev/null 2>&1 || \
	  command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 || { echo "the console's browser tests need Chromium:" \
	      "install it, or set CHROMIUM_PATH to a Chromium binary"; exit 1; }; \
	    echo "installing Chromium for the console's browser tests (apt-get install chromium)"; \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null || \
	    { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }

test: install browser lint typecheck schemas-check  ## the whole suite: lint, types, schema drift, all tests
	$(UV) run --frozen pytest $(PYTEST_ARGS)

test-fast: install  ## unit and contract tests only
	$(UV) run --frozen pytest -m "unit or contract" $(PYTEST_ARGS)

lint: install  ## ruff lint and format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install  ## apply ruff fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

typecheck: install  ## mypy (strict) over the shared library
	$(UV) run --frozen mypy

schemas: install  ## regenerate docs/events (JSON Schemas + AsyncAPI)
	$(UV) run --frozen python -m llmops_shared.events.export

schemas-check: install  ## fail when docs/events drifted from the code
	$(UV) run --frozen python -m llmops_shared.events.export --check

bench: install  ## streams benchmark; prints figures (see docs/benchmarks.md)
	$(UV) run --frozen python bench/streams.py

up: install  ## the whole local stack (Redis, MLflow, gateway, workers); Ctrl-C stops it
	$(UV) run --frozen llmops up

bench-gateway: install  ## gateway benchmark on the real local stack (see docs/benchmarks.md)
	$(UV) run --frozen python bench/gateway.py

bench-versioning: install  ## dataset version creation and diff, 1k and 10k files (docs/benchmarks.md)
	$(UV) run --frozen python bench/versioning.py

bench-github-sync: install  ## create_model_version -> commit, webhook vs polling (docs/benchmarks.md)
	$(UV) run --frozen python bench/github_sync.py

bench-loop: install  ## the tiny training loop: submit -> Succeeded -> values file, tokens/s (docs/benchmarks.md)
	$(UV) run --frozen python bench/training_loop.py

bench-flags:  ## integration flag change -> worker on the other backend (docs/benchmarks.md)
	$(UV) run --frozen python bench/flag_switch.py --switches 10

run: up  ## alias of up

clean:  ## remove the virtualenv and caches
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
