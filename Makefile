# The commands a person types. `make run` and `make test` set everything up on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins its own dependency versions, so it lives in a separate virtualenv.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: run test lint fmt dev soak bench package clean venv tools screenshots prerequisites-test prerequisites-lint

# The system tools a target needs (one line per missing tool, with how to install it, then fail).
prerequisites-test prerequisites-lint:
	@$(PYTHON) scripts/check_prerequisites.py $(@:prerequisites-%=%)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $(TOOLS_STAMP)

venv: $(STAMP)

tools: $(TOOLS_STAMP)

run: $(STAMP)
	$(BIN)/orchestra run all --environment development --mode analyze

# Local topology: emulators, the five functions, the console, topics, push subscriptions, a cron publisher.
dev: $(STAMP)
	$(BIN)/python -m orchestra.devtopology $(DEV_ARGS)

# The topology of `make dev` under a stream of events and injected faults, then the invariant
# checker; e.g. make soak SOAK_ARGS="--events 10000 --rate 20 --seed 7 --minutes 15 --fault-every 5".
soak: $(STAMP)
	$(BIN)/python -m soak $(SOAK_ARGS)

test: prerequisites-test $(STAMP) $(TOOLS_STAMP)
	$(BIN)/python -m pytest -q

# Each benchmark prints its figures as ratios against a baseline measured in the same run; then
# how long each took and the total (budget: 5 minutes on 2 cores). Fails if a benchmark fails.
BENCHES := bench/runner.py bench/store.py bench/continuous.py bench/functions.py bench/workspace.py bench/performance.py bench/cost.py bench/deployment.py bench/deploy.py bench/inputs.py bench/cost_detection.py bench/console.py
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCHES)

# The README's console images (docs/images), from the bundled samples; needs chromium and chromedriver.
screenshots: $(STAMP)
	$(BIN)/python scripts/console_screenshots.py --out docs/images

package:
	$(PYTHON) scripts/package_functions.py --out build/functions

lint: prerequisites-lint $(STAMP) $(TOOLS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	terraform fmt -check -recursive terraform
	$(BIN)/actionlint .github/workflows/*.yml
	$(TOOLS)/bin/checkov --quiet --compact --skip-download -d terraform -d deploy/gke

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	terraform fmt -recursive terraform

clean:
	rm -rf $(VENV) $(TOOLS) .orchestra .pytest_cache .ruff_cache build dist
