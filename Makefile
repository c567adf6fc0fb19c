# make report: environment, data, every notebook (papermill), then report/report.pdf
# make test:   environment, then the test suite (units + the smoke pipeline)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?=
RUN_ARGS := $(if $(PROFILE),--profile $(PROFILE),)

.PHONY: setup data notebooks report render test lab clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

data: setup
	$(BIN)/python -m lib data

notebooks: setup
	$(BIN)/python -m lib run $(RUN_ARGS) --no-render

report: setup
	$(BIN)/python -m lib run $(RUN_ARGS)

render: setup
	$(BIN)/python -m lib render

test: setup
	$(BIN)/python -m pytest

lab: setup
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf report/_build report/notebooks checkpoints
