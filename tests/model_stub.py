"""A small local model server stub that speaks the serving contract (vLLM's OpenAI-compatible API).

It answers from a script instead of a model; tests that need real generation use `ft serve`. With "stream": true
it sends `answer` as OpenAI's server-sent events, as vLLM and `ft serve` do, `chunk_chars` characters a chunk.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from fakes import local_http


class ModelStub:
    def __init__(self, base: str = "base-model", api_key: str | None = None) -> None:
        self.base = base
        self.api_key = api_key  # set: every /v1 request needs it as a Bearer token, as on both real servers
        self.refused = 0
        self.adapters: dict[str, str] = {}
        self.requests: list[dict] = []
        self.answer = "The trial lasts 21 days."
        self.delay_s = 0.0  # before the answer starts (streamed or not)
        self.first_token_delay_s = 0.0  # streamed: after the role chunk, before the first piece of text
        self.chunk_delay_s = 0.0  # streamed: before each later piece
        self.chunk_chars = 4
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _models(self, _: web.Request) -> web.Response:
        data = [{"id": self.base, "object": "model", "root": self.base, "parent": None}]
        data += [{"id": n, "object": "model", "root": p, "parent": self.base} for n, p in self.adapters.items()]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if body.get("model") not in {self.base, *self.adapters}:
            return web.json_response({"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                                "type": "NotFoundError", "code": 404}}, status=404)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if body.get("stream"):
            return await self._stream(request, body)
        return web.json_response({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": self.answer}}]})

    async def _stream(self, request: web.Request, body: dict) -> web.StreamResponse:
        head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}

        def event(choices: list, **extra) -> bytes:
            return f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n".encode()

        def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
            return event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(chunk({"role": "assistant", "content": ""}))
        pieces = [self.answer[i:i + self.chunk_chars] for i in range(0, len(self.answer), self.chunk_chars)]
        for n, piece in enumerate(pieces):
            delay = self.first_token_delay_s if n == 0 else self.chunk_delay_s
            if delay:
                await asyncio.sleep(delay)
            await resp.write(chunk({"content": piece}))
        await resp.write(chunk({"content": ""}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            words = len(self.answer.split())
            await resp.write(event([], usage={"prompt_tokens": 10, "completion_tokens": words,
                                              "total_tokens": 10 + words}))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def _load(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["lora_name"] in self.adapters:
            return web.json_response({"error": {"message": "already loaded", "code": 400}}, status=400)
        self.adapters[body["lora_name"]] = body["lora_path"]
        return web.Response(text=f"Success: LoRA adapter '{body['lora_name']}' added successfully.")

    async def _unload(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.adapters.pop(body["lora_name"], None) is None:
            return web.json_response({"error": {"message": "not found", "code": 404}}, status=404)
        return web.Response(text=f"Success: LoRA adapter '{body['lora_name']}' removed successfully.")

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.refused += 1
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    async def start(self) -> "ModelStub":
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/load_lora_adapter", self._load)
        app.router.add_post("/v1/unload_lora_adapter", self._unload)
        self._runner, self.url = await local_http.start(app)
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
