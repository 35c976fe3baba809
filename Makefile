# Two commands do everything on a fresh machine (Python >= 3.11 with venv):
#   make demo   set up .venv and run the whole pipeline on the bundled sample postings
#   make test   set up .venv and run the whole test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup browser clean

$(BIN)/jobfit: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/jobfit

setup: $(BIN)/jobfit

demo: setup
	$(BIN)/jobfit --db reports/demo.duckdb run sample_postings/ --profiles sample_profiles/ --out reports/

test: setup browser
	$(BIN)/python -m pytest -q

# Debian's chromium renders the HTML reports in tests/test_report_browser.py; where it cannot be
# installed (not root, no apt) those tests skip and say why
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
	      || echo "note: could not install chromium; the browser tests will be skipped"; \
	  else echo "note: chromium is not installed; the browser tests will be skipped"; fi; }

clean:
	rm -rf $(VENV) reports/*.html reports/*.md reports/*.csv reports/*.jsonl reports/*.duckdb
