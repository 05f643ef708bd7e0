# revops-kit — `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
REVOPS := $(BIN)/revops
DEMO   := data/demo
DATA   ?= $(DEMO)
OUT    ?= reports
STAMP  := $(VENV)/.setup-stamp
# PERIOD defaults to the last complete month (computed by revops_lib.periods)
PERIOD ?=
JOBS   ?=

FROM   ?=
TO     ?=

# Demo data are built only into data/demo (and demo-data itself writes only into a folder it made).
# Any other DATA must exist already: it is never written, only read (and validated by the report run).
ifeq ($(abspath $(DATA)),$(abspath $(DEMO)))
DATA_DEP := $(DEMO)/.complete
else
DATA_DEP :=
ifneq ($(filter demo-data,$(MAKECMDGOALS)),)
$(error `make demo-data` builds demo data only into $(DEMO), not DATA=$(DATA); for another folder run `$(REVOPS) demo-data --out DIR`)
endif
ifneq ($(filter validate reports backfill weekly quarterly lab,$(MAKECMDGOALS)),)
ifeq ($(findstring ://,$(DATA))$(wildcard $(DATA)),)
$(error DATA=$(DATA) does not exist; `make $(firstword $(filter validate reports backfill weekly quarterly lab,$(MAKECMDGOALS)))` builds demo data only into $(DEMO))
endif
endif
endif

.PHONY: help setup reports backfill weekly quarterly demo-data validate test test-fast bench lab clean system-deps

help: ## Show this help
	@echo "revops-kit — make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'
	@echo "Variables: PERIOD=2026-10  DATA=$(DATA)  OUT=$(OUT)  JOBS=N"
	@echo "Demo data are built only into $(DEMO) (when absent); any other DATA must exist and is only read."

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(BIN)/python -m pip install --quiet -e '.[test,spark]' 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the kit (editable, with test and spark extras); re-runs only when pyproject.toml changes

$(DEMO)/.complete: | $(STAMP)
	$(REVOPS) demo-data --out $(DEMO)
	@touch $@

demo-data: $(STAMP) $(DATA_DEP) ## Build the demo company's data into data/demo if absent (never into another DATA)

validate: $(STAMP) $(DATA_DEP) ## Check the data in DATA against the data contract
	$(REVOPS) validate --source $(DATA)

reports: $(STAMP) $(DATA_DEP) ## Build the latest month's reports (or PERIOD=2026-10) into reports/
	$(REVOPS) report --source $(DATA) --out $(OUT) $(if $(PERIOD),--period $(PERIOD)) $(if $(JOBS),--jobs $(JOBS))

pdf: $(STAMP) $(DATA_DEP) system-deps ## Build the latest month's reports and its PDF pack (reports/<period>/<period>-pack.pdf; or PERIOD=2026-10)
	$(REVOPS) report --source $(DATA) --out $(OUT) $(if $(PERIOD),--period $(PERIOD)) $(if $(JOBS),--jobs $(JOBS)) --pdf

backfill: $(STAMP) $(DATA_DEP) ## Build every month from FROM to TO, in parallel (make backfill FROM=2026-01 TO=2026-10)
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=2026-01 TO=2026-10"; exit 2; }
	$(REVOPS) report --source $(DATA) --out $(OUT) --from $(FROM) --to $(TO) $(if $(JOBS),--jobs $(JOBS))

weekly: $(STAMP) $(DATA_DEP) ## Build the reports of the last complete ISO week
	$(REVOPS) report --source $(DATA) --out $(OUT) --cadence week $(if $(JOBS),--jobs $(JOBS))

quarterly: $(STAMP) $(DATA_DEP) ## Build the reports of the last complete quarter
	$(REVOPS) report --source $(DATA) --out $(OUT) --cadence quarter $(if $(JOBS),--jobs $(JOBS))

system-deps: ## Install the system packages the tests use (PostgreSQL, Chromium, Java 17 for Spark; Debian, needs root)
	bash .ci/system-deps

# CI=true: a test that needs PostgreSQL, Chromium or Spark fails when it cannot have it, as in CI (never a quiet skip)
# Two runs: every test but Spark's in parallel on every core (pytest-xdist), then the Spark tests alone (one JVM, whose
# queries slow down 2x beside other tests). A failure in the first still runs the second; the exit code is the worst.
# Both share one temporary folder (REVOPS_TEST_SHARED): the demo data and reports are built once for the whole run.
test: $(STAMP) system-deps ## Run the whole test suite as CI does (slow, notebook, PostgreSQL, Spark and browser tests; none skipped)
	@rc=0; shared=$$(mktemp -d -t revops-test-XXXXXX); export REVOPS_TEST_SHARED=$$shared; \
	CI=true $(BIN)/python -m pytest -n auto --dist worksteal -m "not spark" $(PYTEST_ARGS) || rc=$$?; \
	CI=true $(BIN)/python -m pytest -m spark $(PYTEST_ARGS) || rc=$$?; rm -rf "$$shared"; exit $$rc

test-fast: $(STAMP) ## Run the tests not marked slow (skips, and says so, those whose PostgreSQL, Chromium or Java is missing)
	$(BIN)/python -m pytest -n auto --dist worksteal -m "not slow"

bench: $(STAMP) ## Run the benchmarks in bench/ (prints seconds, peak memory, ratios to pandas)
	@for b in bench/*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(BIN)/python $$b; done

mutation: $(STAMP) ## Mutation testing (mutmut) of the metric, pacing, statistics, period and formatting code on a random sample (SAMPLE=400; 0: all); killed/survived per module
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]' 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@start=$$(date +%s); $(BIN)/python tests/tools/mutation_sample.py --sample $(or $(SAMPLE),400) --jobs $(or $(JOBS),$$(nproc)); rc=$$?; \
	  echo "mutmut run: exit $$rc after $$(( $$(date +%s) - start )) s"
	$(BIN)/python tests/tools/mutation_summary.py

lab: $(STAMP) $(DATA_DEP) ## Open JupyterLab on 127.0.0.1 (token-protected) in notebooks/
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --ServerApp.root_dir=notebooks

clean: ## Remove generated data, reports and caches (keeps .venv)
	rm -rf data/demo build .pytest_cache .hypothesis mutants
	find reports -mindepth 1 ! -name README.md -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
