"""Serving: the OpenAI-compatible client, the embedded model server, vLLM, deployment, retrieval."""

import logging

# peft imports bitsandbytes when it is installed, and bitsandbytes then warns on CPU that the optional
# `kernels` package (a hub download) is missing; its built-in CPU path is what runs and was measured.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
