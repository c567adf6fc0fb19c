# make report: system packages, environment, data, every notebook (papermill), then report/report.pdf
# make test:   system packages, environment, then the test suite (units + the smoke pipeline)
# Missing Debian packages (python3-venv, dataset-fashion-mnist) are installed by
# scripts/system-packages.sh: as root, or through sudo without a password; otherwise it
# names the command to run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?=
RUN_ARGS := $(if $(PROFILE),--profile $(PROFILE),)

.PHONY: setup system-data data notebooks report render test lab clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@PYTHON=$(PYTHON) bash scripts/system-packages.sh venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

system-data:
	@bash scripts/system-packages.sh data

data: setup system-data
	$(BIN)/python -m lib data

notebooks: setup system-data
	$(BIN)/python -m lib run $(RUN_ARGS) --no-render

report: setup system-data
	$(BIN)/python -m lib run $(RUN_ARGS)

render: setup
	$(BIN)/python -m lib render

test: setup system-data
	$(BIN)/python -m pytest

lab: setup
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

clean:
	rm -rf report/_build report/notebooks checkpoints
