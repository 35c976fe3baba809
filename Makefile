# Two commands do everything on a fresh machine (Python >= 3.11 with venv):
#   make demo   set up .venv and run the whole pipeline on the bundled sample postings
#   make test   set up .venv and run the whole test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

$(BIN)/jobfit: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/jobfit

setup: $(BIN)/jobfit

demo: setup
	$(BIN)/jobfit --db reports/demo.duckdb run sample_postings/ --profile sample_profiles/experienced_cpc_coder.yaml --out reports/

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) reports/*.html reports/*.md reports/*.csv reports/*.jsonl reports/*.duckdb
