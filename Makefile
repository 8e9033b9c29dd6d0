# Two entry points do all set-up: `make run` (the main job) and `make test` (lint, types, tests).
# `make dashboard` then shows their runs (stop it: .venv/bin/zenml logout --local).
# Both create .venv on first use. TORCH is installed first so the range in pyproject.toml resolves
# to it: torch==2.13.0 is the local CPU wheel here (no multi-GB CUDA download). Everything else is
# pinned by constraints.txt (what CI tested), so a fresh install resolves to the same versions.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint typecheck unit clean dashboard serve

# ZenML: no analytics calls, no browser; the local stack is created on first use.
export ZENML_ANALYTICS_OPT_IN ?= false
export ZENML_AUTO_OPEN_DASHBOARD ?= false
DASHBOARD_PORT ?= 8237

run: $(VENV)/.installed .zen
	$(BIN)/python run.py --config configs/training.yaml

# The production version answers POST /retrieve on http://127.0.0.1:8080 (docs/serving.md);
# CORPUS=FILE (id + text, as `prime index` reads) serves over that corpus instead of its index.
serve: $(VENV)/.installed .zen
	$(BIN)/python serve.py $(if $(CORPUS),--corpus "$(CORPUS)")

.zen: | $(BIN)/python
	$(BIN)/zenml init

# The local ZenML server (a daemon) and its dashboard, over the same local store as `make run`.
dashboard: $(VENV)/.installed .zen
	$(BIN)/zenml login --local --port $(DASHBOARD_PORT)
	@echo "dashboard: http://127.0.0.1:$(DASHBOARD_PORT) (stop it: $(BIN)/zenml logout --local)"

test: $(VENV)/.installed-dev lint typecheck unit

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy .

# The coverage gate is here, not in pytest's addopts: one test file run by hand is not failed on it.
unit: $(VENV)/.installed-dev
	$(BIN)/pytest --cov=prime_model --cov-report=term-missing --cov-fail-under=85

# The inner loop (CONTRIBUTING.md): no pipeline runs, no containers, no real training or encoding,
# no coverage. `make test` remains the gate.
test-fast: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not slow and not pipeline and not docker"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage outputs

# Nightly retraining from cron, since the local orchestrator cannot schedule (infra/local/).
# Prints the crontab line for this checkout; CONFIRM=yes also adds it to your crontab, once.
.PHONY: schedule-local
schedule-local:
	@line="$$(sed -n 's|@REPO@|$(CURDIR)|g; /^[^#]/p' infra/local/crontab)"; \
	echo "$$line"; \
	if [ "$(CONFIRM)" != yes ]; then \
		echo "(not installed: 'make schedule-local CONFIRM=yes' adds it to your crontab)" >&2; \
		exit 0; \
	fi; \
	current="$$(crontab -l 2>/dev/null || true)"; \
	if printf '%s\n' "$$current" | grep -qxF -- "$$line"; then \
		echo "already in your crontab: nothing changed"; \
	else \
		{ if [ -n "$$current" ]; then printf '%s\n' "$$current"; fi; printf '%s\n' "$$line"; } \
			| crontab - && echo "added to your crontab (crontab -l to see it)"; \
	fi

# Containers (infra/README.md, "Containers"): the pipeline image and the local Docker stack.
# `make image` builds prime-predictor:latest from infra/docker/Dockerfile (infra/docker/build.sh
# picks the base, python:3.11-slim or the Debian-packages one, and where the CPU torch comes from);
# `make base-image` makes that Debian-packages base alone (no registry here: debootstrap, root);
# `make docker-stack` registers the prime-docker stack (ZenML's local_docker orchestrator), then
#   .venv/bin/zenml pipeline run pipelines.training_pipeline -c configs/smoke_docker.yaml -s prime-docker
# `make test-docker` builds the image and runs that smoke pipeline in containers, in a throwaway
# store (tests/containers; opt-in, never part of `make test`).
.PHONY: base-image image docker-stack test-docker
base-image:
	infra/docker/build-base.sh

image: $(VENV)/.installed
	infra/docker/build.sh

docker-stack: $(VENV)/.installed
	ZENML=$(BIN)/zenml infra/stacks/local_docker.sh

test-docker: $(VENV)/.installed-dev
	PRIME_DOCKER_TESTS=1 $(BIN)/pytest tests/containers -p no:cacheprovider --no-cov
