"""A streamed chat completion as OpenAI's server-sent events, in the order and shapes vLLM sends them
(vllm/entrypoints/openai/chat_completion/serving.py), so either server can stand behind a streaming client."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from serving.errors import ServingError
from serving.generation import Generation

log = logging.getLogger("serving.model_server")


def usage(gen: Generation) -> dict[str, int]:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens}


class EventStream:
    """One streamed chat completion as OpenAI's server-sent events, shaped as vLLM's (chat_completion/serving.py):
    a first chunk with the role and empty content, one chunk per piece, a last chunk with finish_reason, with
    include_usage a chunk with no choices and the usage, then [DONE]."""

    def __init__(self, model: str, include_usage: bool):
        self.head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": model}
        self.include_usage = include_usage

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def text(self, piece: str) -> bytes:
        return self._chunk({"content": piece})

    def end(self, generation: "asyncio.Future[Generation]") -> bytes:
        """The last events: finish_reason (and usage), or the generation's error as an event; then [DONE]."""
        try:
            gen = generation.result()
        except ServingError as exc:
            return sse(exc.body()) + sse("[DONE]")
        except Exception as exc:  # never a traceback: vLLM's error event
            log.exception("a streamed generation failed")
            return sse(ServingError(500, f"{exc.__class__.__name__}: {exc}").body()) + sse("[DONE]")
        last = self._chunk({"content": ""}, gen.finish_reason, stop_reason=None)
        if self.include_usage:
            last += sse({**self.head, "choices": [], "usage": usage(gen)})
        return last + sse("[DONE]")

    def _chunk(self, delta: dict[str, str], finish_reason: str | None = None, **extra: Any) -> bytes:
        return sse({**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish_reason, **extra}]})


def sse(data: Any) -> bytes:
    """One server-sent event: `data: <JSON>` (or the plain text, for [DONE]) and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode("utf-8")
