# KV-FlexNet — the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the test suite talks to (real servers and clients, never mocks).
TEST_DEBIAN_PACKAGES := postgresql freeradius-utils freeradius chromium poppler-utils
# tests/install checks deploy/ with them: nginx -t and a live site, systemd-analyze verify.
TEST_DEBIAN_PACKAGES += nginx systemd openssl
# RADIUS over TLS (RFC 6614): radsecproxy is the TLS client in tests/functional/test_radius_tls.py.
TEST_DEBIAN_PACKAGES += radsecproxy
# make interop only: the OpenConnect VPN server (with radcli) and client (iproute2 for ip netns).
INTEROP_DEBIAN_PACKAGES := ocserv openconnect iproute2

.DEFAULT_GOAL := help
.PHONY: help install system-deps run test test-tools lint format clean bench soak fuzz audit dist interop screenshots
FUZZ_SECONDS ?= 300
FUZZ_HARNESSES := radius_packets otp_parser

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(BIN)/.installed ## Create .venv and install flexnet with its test tools

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

system-deps: ## Install the Debian packages the test suite needs (idempotent)
	scripts/ensure-debian-packages $(TEST_DEBIAN_PACKAGES)

run: install ## Start web + RADIUS on a local SQLite demo instance (created on first start)
	FLEXNET_DEMO=1 FLEXNET_COOKIE_SECURE=0 $(BIN)/flexnet run

lint: install ## ruff check + format check, mypy over flexnet/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: system-deps install test-tools lint ## Install everything and run the whole suite (builds and smoke-tests the wheel)
	$(BIN)/pytest

test-tools: node_modules/axe-core/axe.min.js ## The npm tools the browser tests inject (axe-core), from package-lock.json

node_modules/axe-core/axe.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

screenshots: system-deps install test-tools ## Write the admin UI's screenshots into docs/screenshots/ (the every-page scan)
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest tests/functional/test_admin_everypage.py -p no:randomly -q -k every_admin_page

dist: install ## Build the sdist and, from it, the wheel into dist/ (what production installs)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

clean: ## Remove the virtualenv, caches and build outputs (keeps instance/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info

bench: system-deps install ## Run the benchmarks and write docs/BENCHMARKS.md (not part of make test)
	$(BIN)/pytest benchmarks -p no:randomly -q

interop: system-deps install ## ocserv + openconnect against flexnet (root, netns, TUN; not in make test)
	scripts/ensure-debian-packages $(INTEROP_DEBIAN_PACKAGES)
	$(BIN)/pytest interop -p no:randomly -q

fuzz: install ## Coverage-guided fuzzing (atheris) of RADIUS packets and the OTP parser, FUZZ_SECONDS each
	@set -e; for harness in $(FUZZ_HARNESSES); do \
		echo "== fuzz.$$harness for $(FUZZ_SECONDS) s"; \
		FLEXNET_FUZZ_STRICT=1 $(BIN)/python -m fuzz.$$harness -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 $(FUZZ_FLAGS); \
	done

soak: system-deps install ## RADIUS at half capacity for SOAK_SECONDS (600): flat memory and latency
	$(BIN)/pytest benchmarks/soak_radius.py -p no:randomly -q

audit: install ## pip-audit of every installed dependency (needs pypi.org's JSON API)
	$(BIN)/python -m pip install --quiet -e '.[test,audit]'
	$(BIN)/pip-audit --progress-spinner off --skip-editable --strict
