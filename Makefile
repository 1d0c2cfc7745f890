# tfpersist — `make help` lists the targets. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# dvc runs each stage's `python …` from PATH: make that the virtual environment's.
export PATH := $(abspath $(BIN)):$(PATH)
STAMP := $(VENV)/.installed-$(shell cat requirements.lock requirements-nodeps.lock pyproject.toml | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help setup offline-plots repro test test-fast check-repro compare bench bench-quick lint format clean remote-up remote-down plots browser eigen iproute hosts zoo

## Show this help.
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(doc){split($$1,t,":"); printf "  \033[36m%-12s\033[0m %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock requirements-nodeps.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

# vega, vega-lite and vega-embed from the npm registry, inlined into an offline plots page
# that plain `dvc plots show` uses (plots.html_template in .dvc/config.local, this clone's own).
PLOTS_DIR := $(VENV)/plots
PLOTS_TEMPLATE := $(PLOTS_DIR)/template.html
NPM_PACKAGES := vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0

$(PLOTS_TEMPLATE):
	@if command -v npm >/dev/null; then \
		npm install --no-save --no-package-lock --no-audit --no-fund --silent --prefix $(PLOTS_DIR) $(NPM_PACKAGES) && \
		$(BIN)/python -c "from tfpersist.views import plots; plots.write_template('$(PLOTS_DIR)/node_modules', '$@')"; \
	else echo "setup: npm not found: dvc plots show will load vega from its CDN (install Node.js for offline plots)"; \
		$(BIN)/python -c "from tfpersist.views import plots; plots.write_online_template('$@')"; fi

## Create .venv with the pinned dependencies (requirements.lock), tfpersist itself, and the offline plots page.
setup: $(STAMP)
	@$(MAKE) --no-print-directory offline-plots

# The page (built once per virtual environment) and this clone's pointer to it.
offline-plots: $(PLOTS_TEMPLATE)
	@$(BIN)/dvc config --local plots.html_template $(abspath $(PLOTS_TEMPLATE))

## Run the whole pipeline: prepare → train → checkpoint → freeze → evaluate (dvc repro); push to the remote when it is up.
repro: setup
	$(BIN)/dvc repro
	@$(BIN)/dvc metrics show
	@if $(BIN)/tfpersist remote status >/dev/null; then $(BIN)/dvc push; \
	else echo "repro: the DVC remote is not running (make remote-up), nothing pushed"; fi

## Render the training curves and confusion matrix to dvc_plots/index.html (plain `dvc plots show`: vega inlined, works offline).
plots: setup
	$(BIN)/dvc plots show

## Start the local S3 object store behind the DVC remote (SeaweedFS on 127.0.0.1:8333, data in .remote/).
remote-up: setup
	$(BIN)/tfpersist remote up

## Stop the local object store.
remote-down: setup
	$(BIN)/tfpersist remote down

# CI runs the browser tests (the HTML pages in headless Chromium), the Eigen probe (g++ and
# Eigen's headers) and the hosts test (iproute2's ip): install them there.
BROWSER_FOR_TESTS := $(if $(filter true,$(CI)),browser eigen iproute)

## Install headless Chromium from the distribution's packages, for the HTML page tests.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; \
	else echo "browser: install Chromium with your package manager"; exit 1; fi

## Install g++ and Eigen's headers from the distribution's packages, for the Eigen probe test.
eigen:
	@if command -v g++ >/dev/null && [ -d /usr/include/eigen3 ]; then :; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends g++ libeigen3-dev; \
	else echo "eigen: install g++ and Eigen 3.4's headers with your package manager"; exit 1; fi

## Install iproute2 (ip: network namespaces as hosts), for the hosts test and make hosts.
iproute:
	@if command -v ip >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends iproute2; \
	else echo "iproute: install iproute2 with your package manager"; exit 1; fi

## Train on 1, 2 and 4 hosts that share only a network (namespaces; root): fresh, killed, resumed = dvc.lock.
hosts: setup iproute
	$(BIN)/python tests/hosts.py

## Run the test suite (real TensorFlow and DVC; two pytest-xdist workers, about 7 minutes on 2 cores).
test: setup $(BROWSER_FOR_TESTS)
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder -m "not zoo"

## Every Keras application (17, weights=None) through inspect, freeze, predict, compare, export.
zoo: setup
	$(BIN)/python -m pytest -n 2 tests/freezing/test_zoo.py -m zoo

## Run the tests without the end-to-end pipeline runs.
test-fast: setup
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder -m "not slow and not zoo"

## Rebuild HEAD from scratch in a temp clone and compare every stage with dvc.lock.
check-repro: setup
	$(BIN)/tfpersist check-repro --rev $(or $(REV),HEAD)

## Compare the frozen model at A (default HEAD) with B (default: the workspace): a git revision, or a registered version (digits@v1.0.0, digits#prod).
compare: setup
	$(BIN)/tfpersist compare $(call model_at,$(or $(A),HEAD)) $(if $(B),$(call model_at,$(B)),models/frozen/model.pb) --localize --html compare.html

# A version for make compare: a registered name (digits@v1.0.0, digits@latest, digits#prod)
# as it is, anything else a git revision of the frozen model.
HASH := \#
model_at = '$(if $(findstring @,$(1))$(findstring $(HASH),$(1)),$(1),models/frozen/model.pb@$(1))'

# The bench's HTTP load generator (serving figures): installed with apt-get when missing.
NEED_WRK = command -v wrk >/dev/null || { echo "bench: installing wrk (the HTTP load generator) with apt-get"; apt-get install -y -qq wrk >/dev/null 2>&1 || echo "bench: no wrk (apt-get install wrk): the serving figures are skipped"; }

## Benchmark against peers (freeze_graph, Keras fit, MLflow serving, dvc status, scale at 10M rows): about 22 minutes on 2 cores, plus MLflow's install into .venv/bench-mlflow on the first run; writes bench/results.md.
bench: setup
	@test -f models/frozen/model.pb || $(BIN)/dvc repro
	@$(NEED_WRK)
	$(BIN)/python bench/bench.py

## The benchmarks once each, short, no peer installed (MLflow's server skipped): about 6 minutes on 2 cores; prints the table, notes its time in bench/results.md.
bench-quick: setup
	@test -f models/frozen/model.pb || $(BIN)/dvc repro
	@$(NEED_WRK)
	$(BIN)/python bench/bench.py --quick

## Check style and common bugs with ruff.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Reformat the code with ruff.
format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Remove the virtual environment and caches (pipeline outputs stay in DVC's cache).
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
