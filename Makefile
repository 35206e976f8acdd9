# gong-sync: every target builds the virtual environment and installs the pinned dependencies first
# (once; again only when pyproject.toml or requirements.lock change).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: help sync crm-upload demo test lint bench record-cassettes schema clean install models

help:
	@echo "make demo    sync a simulated Gong account into demo/gong_demo.duckdb and query it (no credentials)"
	@echo "make sync    sync your Gong account (SOURCES__GONG__* or .dlt/secrets.toml); ARGS='--help' for options"
	@echo "make models  build the dbt models (transform/) on the warehouse the last sync loaded; ARGS='--help' for options"
	@echo "make crm-upload   push CRM rows from SQL into Gong (crm_mapping.toml); ARGS='--dry-run', ARGS='--help'"
	@echo "make test    run the test suite (against the in-process simulator; needs Postgres on 127.0.0.1:5432 in CI)"
	@echo "make lint    ruff"
	@echo "make bench   benchmark the pipeline against the simulator (~8 min; ARGS='--quick' ~3 min); bench/RESULTS.md"
	@echo "make record-cassettes   re-record the client-quirk cassettes from the local simulator"
	@echo "make schema  regenerate the table contract (schemas/gong.schema.yaml) and docs/tables.md"

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) (log: $(VENV)/install.log)..."
	@$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.lock > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; echo "make: installing the dependencies failed (see above)" >&2; exit 1; }
	@$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e . \
		>> $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; echo "make: installing gong-sync failed (see above)" >&2; exit 1; }
	@touch $@

sync: $(STAMP)
	@$(BIN)/gong-sync $(ARGS)

models: $(STAMP)
	@$(BIN)/python -m pipelines.models $(ARGS)

crm-upload: $(STAMP)
	@$(BIN)/gong-crm-upload $(ARGS)

demo: $(STAMP)
	@$(BIN)/python -m pipelines.demo $(ARGS)

test: $(STAMP)
	@$(BIN)/python -m pytest -q $(ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check .

schema: $(STAMP)
	@$(BIN)/python -m pipelines.export_schema

bench: $(STAMP)
	@$(BIN)/python -m bench.run_bench $(ARGS)

record-cassettes: $(STAMP)
	@GONG_SYNC_RECORD=1 $(BIN)/python -m pytest -q -m cassette $(ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
