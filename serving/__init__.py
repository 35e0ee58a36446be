"""Serving: the OpenAI-compatible client, the embedded model server, vLLM, deployment, retrieval."""
