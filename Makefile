# The two commands a newcomer runs: `make demo` (the main job end to end on the embedded
# default) and `make test` (lint + the whole test suite). Both create or reuse the venvs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
IVENV  := .venv-infra
LSVENV := .venv-labelstudio
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck venv infra-venv labelstudio-venv clean

# torch first (the local CPU build), then everything else pinned by constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[serve,train,dev]'
	touch $@

# Infra linters (checkov, ansible, ansible-lint) pin conflicting versions: their own venv.
$(IVENV)/.installed: requirements/infra.txt
	test -x $(IVENV)/bin/python || $(PYTHON) -m venv $(IVENV)
	$(IVENV)/bin/pip install -q --upgrade pip
	$(IVENV)/bin/pip install -q -r requirements/infra.txt
	touch $@

# The Label Studio server for the review-queue tests pins Django & co.: its own venv. Its database
# is migrated once here into template/ (a minute of migrations), which each test session copies.
$(LSVENV)/.installed: requirements/labelstudio.txt
	test -x $(LSVENV)/bin/python || $(PYTHON) -m venv $(LSVENV)
	$(LSVENV)/bin/pip install -q --upgrade pip
	$(LSVENV)/bin/pip install -q -r requirements/labelstudio.txt
	rm -rf $(LSVENV)/template && mkdir -p $(LSVENV)/template
	LABEL_STUDIO_BASE_DATA_DIR=$(CURDIR)/$(LSVENV)/template LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false \
	  SENTRY_DSN= FRONTEND_SENTRY_DSN= $(LSVENV)/bin/label-studio version >$(LSVENV)/template.log 2>&1
	test -s $(LSVENV)/template/label_studio.sqlite3
	touch $@

venv: $(VENV)/.installed
infra-venv: $(IVENV)/.installed
labelstudio-venv: $(LSVENV)/.installed

demo: venv
	$(BIN)/aidetect demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench components pipelines .ci

# mypy over src/aidetect as pyproject.toml [tool.mypy] configures it (incremental cache: .mypy_cache/).
typecheck: venv
	$(BIN)/mypy

# Coverage of src/aidetect, line and branch ([tool.coverage] in pyproject.toml): fails below the floor.
test: venv infra-venv labelstudio-venv lint typecheck
	PATH="$(CURDIR)/$(BIN):$(CURDIR)/$(IVENV)/bin:$$PATH" $(BIN)/pytest -q --cov --cov-report=term

clean:
	rm -rf .aidetect .pytest_cache .ruff_cache .mypy_cache .coverage
