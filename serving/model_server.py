"""The embedded model server (`ft serve`): transformers + peft behind vLLM's HTTP contract.

    GET  /v1/models               base model + one card per loaded adapter (id, root, parent)
    POST /v1/chat/completions     {"model": base or adapter name, "messages", "max_tokens", "temperature"}; with
                                  "stream": true, OpenAI's server-sent events as vLLM sends them (EventStream)
    POST /v1/load_lora_adapter    {"lora_name", "lora_path"} -> 200 plain text; already loaded -> 400
    POST /v1/unload_lora_adapter  {"lora_name"} -> 200 plain text; unknown -> 404
    GET  /health                  200, empty body; 503 with the reason when the engine cannot serve
    GET  /metrics                 Prometheus text

With an API key (FT_MODEL_SERVER_API_KEY), every /v1… request needs `Authorization: Bearer <key>` and
gets 401 {"error": "Unauthorized"} without it, as vLLM's --api-key does; /health and /metrics stay open.

Errors are vLLM's JSON: {"error": {"message", "type", "param", "code"}}. The model lives on one
worker thread: generations, loads and unloads run there one at a time, so the event loop keeps
answering /health and /v1/models while a generation runs. Generations wait in a bounded queue in
front of that thread; when `max_queue` of them wait, the next one gets 503 at once. A client that
hangs up stops its generation at the next token, streamed or not. A streamed answer's errors before its
first piece are the same JSON responses; after it, an event {"error": {…}} and then [DONE], as vLLM sends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import threading
import time
import uuid
from typing import Any, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.contract import adapter_name_problem
from serving.auth import BearerAuth, bind_problem
from serving.errors import ServingError
from serving.events import EventStream, usage
from serving.generation import Engine, Generation
from serving.validation import MAX_JSON_DEPTH, SEED_MAX, SEED_MIN, body_problem, path_problem, shown
from serving.worker import ModelWorker

log = logging.getLogger(__name__)


class ServerMetrics:
    def __init__(self, server: "ModelServer"):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ftserve_requests_total", "HTTP requests, by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.generation_seconds = Histogram("ftserve_generation_seconds", "Time on the model thread per generation",
                                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80), registry=r)
        self.generated_tokens = Counter("ftserve_generated_tokens_total", "Completion tokens generated", registry=r)
        self.prompt_tokens = Counter("ftserve_prompt_tokens_total", "Prompt tokens processed", registry=r)
        Gauge("ftserve_queue_depth", "Requests waiting for the model thread",
              registry=r).set_function(lambda: server.worker.waiting)
        Gauge("ftserve_requests_running", "Requests on the model thread now",
              registry=r).set_function(lambda: server.worker.running)
        Gauge("ftserve_adapters_loaded", "LoRA adapters loaded", registry=r).set_function(
            lambda: len(server.engine.adapters))


class ModelServer:
    def __init__(self, engine: Engine, *, max_queue: int = 16, default_max_tokens: int = 256,
                 api_key: str | None = None):
        self.engine = engine
        self.auth = BearerAuth(api_key) if api_key else None
        self.worker = ModelWorker(max_queue)
        self.metrics = ServerMetrics(self)
        self.default_max_tokens = default_max_tokens
        self.created = int(time.time())
        self.url = ""
        self._stops: set[threading.Event] = set()
        self._runner: web.AppRunner | None = None

    # ---- the app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/load_lora_adapter", self._load)
        app.router.add_post("/v1/unload_lora_adapter", self._unload)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0: a free port); ValueError (bind_problem) for an open address without a key."""
        problem = bind_problem(host, "set" if self.auth is not None else None)
        if problem:
            raise ValueError(problem)
        # handler_cancellation: a client that hangs up cancels its handler, which stops its generation.
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}"
        log.info("serving %s on %s", self.engine.served_name, self.url)
        return self.url

    async def stop(self) -> None:
        for event in list(self._stops):
            event.set()
        self.worker.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
        route = request.match_info.route.resource
        endpoint = route.canonical if route is not None else "other"
        if self.auth is not None and not self.auth.allows(request):
            self.metrics.requests.labels(endpoint, "401").inc()
            return web.json_response({"error": "Unauthorized"}, status=401)
        try:
            response = await handler(request)
        except asyncio.CancelledError:  # the client hung up (nginx's 499)
            self.metrics.requests.labels(endpoint, "499").inc()
            raise
        except ServingError as exc:
            response = web.json_response(exc.body(), status=exc.status)
        except web.HTTPException as exc:
            response = web.json_response(ServingError(exc.status, exc.reason).body(), status=exc.status)
        except Exception as exc:  # never a traceback page: vLLM's error JSON
            log.exception("%s %s failed", request.method, request.path)
            response = web.json_response(ServingError(500, f"{exc.__class__.__name__}: {exc}").body(), status=500)
        status = "499" if response.get(HUNG_UP) else str(response.status)  # a stream whose client left mid-way
        self.metrics.requests.labels(endpoint, status).inc()
        return response

    # ---- handlers -------------------------------------------------------------------------------

    async def _health(self, _: web.Request) -> web.Response:
        if self.engine.broken:  # a load balancer takes this replica out; a restart reloads its adapters
            raise ServingError(503, self.engine.broken)
        return web.Response(status=200)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _models(self, _: web.Request) -> web.Response:
        engine = self.engine
        card = {"object": "model", "created": self.created, "owned_by": "ftbot", "max_model_len": engine.max_context}
        data = [{**card, "id": engine.served_name, "root": str(engine.model_dir), "parent": None}]
        data += [{**card, "id": name, "root": path, "parent": engine.served_name}
                 for name, path in list(engine.adapters.items())]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        req = self._chat_request(body)
        stream, include_usage = self._stream_request(body)
        if not self.engine.known(req["model_name"]):
            raise ServingError(404, f"The model `{req['model_name']}` does not exist.", "NotFoundError", "model")
        if stream:
            return await self._chat_stream(request, req, EventStream(req["model_name"], include_usage))
        gen = await self._generate(req)
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": req["model_name"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text}, "logprobs": None,
                         "finish_reason": gen.finish_reason}],
            "usage": usage(gen),
        })

    async def _generate(self, req: dict[str, Any], on_text: Callable[[str], None] | None = None) -> Generation:
        """One generation on the model thread (on_text: its pieces, called on that thread); stopped when the
        caller is cancelled (the client hung up) or the server stops."""
        stop = threading.Event()
        self._stops.add(stop)
        try:
            gen = await self.worker.run(functools.partial(self.engine.generate, stop_event=stop, on_text=on_text,
                                                          **req), stop_event=stop)
        finally:
            self._stops.discard(stop)
        self.metrics.generation_seconds.observe(gen.seconds)
        self.metrics.generated_tokens.inc(gen.completion_tokens)
        self.metrics.prompt_tokens.inc(gen.prompt_tokens)
        return gen

    async def _chat_stream(self, request: web.Request, req: dict[str, Any], events: "EventStream"
                           ) -> web.StreamResponse:
        """The answer as server-sent events, each piece sent as the model thread writes it. The response starts
        with the first piece (or the end), so an error before it (queue full, prompt too long) is still a JSON
        error with its status."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()  # None: the generation ended
        # call_soon_threadsafe keeps the order: every piece is queued before the generation's end is.
        generation = asyncio.ensure_future(
            self._generate(req, on_text=lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece)))
        generation.add_done_callback(lambda _: pieces.put_nowait(None))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})
        try:
            piece = await pieces.get()
            if piece is None:
                generation.result()  # failed before its first piece: the middleware's JSON error
            await response.prepare(request)
            await response.write(events.start())
            while piece is not None:
                await response.write(events.text(piece))
                piece = await pieces.get()
            await response.write(events.end(generation))
        except ConnectionResetError:  # the client left while a piece was being sent
            response[HUNG_UP] = True
        finally:
            if not generation.done():  # cancelled (the client left) or failed to send: stop generating
                generation.cancel()
            elif not generation.cancelled():
                generation.exception()  # seen: asyncio logs no "exception was never retrieved"
        return response

    def _chat_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request's generation arguments, or 400 naming the first bad field."""
        def bad(message: str, param: str) -> ServingError:
            return ServingError(400, message, param=param)

        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise bad("'model' must be a non-empty string", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad("'messages' must be a non-empty list of {role, content}", "messages")
        clean = []
        for i, m in enumerate(messages):
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):  # OpenAI content parts: text only
                if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
                    raise bad(f"messages[{i}].content: only text parts are supported", "messages")
                if not all(isinstance(p.get("text", ""), str) for p in content):
                    raise bad(f"messages[{i}].content: a text part's text must be a string", "messages")
                content = "".join(p.get("text", "") for p in content)
            if not isinstance(m, dict) or m.get("role") not in {"system", "user", "assistant"} \
                    or not isinstance(content, str):
                raise bad(f"messages[{i}] must be {{'role': 'system'|'user'|'assistant', 'content': str}}",
                          "messages")
            clean.append({"role": m["role"], "content": content})
        if body.get("n", 1) != 1:
            raise bad("only n=1 is supported", "n")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        max_tokens = self.default_max_tokens if max_tokens is None else max_tokens
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise bad(f"max_tokens must be an integer >= 1, not {shown(max_tokens)}", "max_tokens")
        stop = body.get("stop")
        stop = [stop] if isinstance(stop, str) else stop
        if stop is not None and not (isinstance(stop, list) and len(stop) <= 4
                                     and all(isinstance(x, str) and x for x in stop)):
            raise bad("stop must be a string or a list of up to 4 non-empty strings", "stop")
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
        if top_p == 0:
            raise bad("top_p must be in (0, 1]", "top_p")
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)
                                 or not SEED_MIN <= seed <= SEED_MAX):  # torch.manual_seed overflows beyond
            raise bad(f"seed must be an integer in [-2**63, 2**63 - 1] (as vLLM), not {shown(seed)}", "seed")
        min_tokens = body.get("min_tokens", 0)
        if not isinstance(min_tokens, int) or isinstance(min_tokens, bool) or min_tokens < 0:
            raise bad("min_tokens must be an integer >= 0", "min_tokens")
        return {"model_name": model, "messages": clean, "max_tokens": max_tokens, "temperature": temperature,
                "top_p": top_p, "seed": seed, "ignore_eos": bool(body.get("ignore_eos", False)),
                "min_tokens": min_tokens, "stop": stop}

    @staticmethod
    def _stream_request(body: dict[str, Any]) -> tuple[bool, bool]:
        """(stream, include_usage), or 400 naming the bad field. As vLLM: stream_options only with stream."""
        stream, options = body.get("stream"), body.get("stream_options")
        if stream is not None and not isinstance(stream, bool):
            raise ServingError(400, f"stream must be a boolean, not {shown(stream)}", param="stream")
        if options and not stream:
            raise ServingError(400, "Stream options can only be defined when `stream=True`.", param="stream_options")
        if options is None:
            return bool(stream), False
        if not isinstance(options, dict):
            raise ServingError(400, f"stream_options must be an object, not {shown(options)}", param="stream_options")
        for key in ("include_usage", "continuous_usage_stats"):
            if options.get(key) is not None and not isinstance(options[key], bool):
                raise ServingError(400, f"stream_options.{key} must be a boolean, not {shown(options[key])}",
                                   param="stream_options")
        if options.get("continuous_usage_stats"):
            raise ServingError(400, "stream_options.continuous_usage_stats is not supported by the embedded server; "
                                    "include_usage sends the usage in the last chunk", param="stream_options")
        return bool(stream), bool(options.get("include_usage"))

    async def _load(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        name, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            raise ServingError(400, "Both 'lora_name' and 'lora_path' must be provided.")
        path_refused = path_problem(path)
        if path_refused:  # before the file system sees it: a 300-character name is an OSError there
            raise ServingError(400, f"lora_path {path_refused}", param="lora_path")
        name_problem = adapter_name_problem(name)
        if name_problem:
            raise ServingError(400, name_problem, "InvalidUserInput", "lora_name")
        if name == self.engine.served_name:
            raise ServingError(400, f"The lora adapter name '{name}' conflicts with a served base model.",
                               "InvalidUserInput", "lora_name")
        if body.get("load_inplace"):
            raise ServingError(400, "load_inplace is not supported: load the new weights under a new name",
                               param="load_inplace")
        if name in self.engine.adapters:
            raise ServingError(400, f"The lora adapter '{name}' has already been loaded. If you want to load the "
                                    "adapter in place, set 'load_inplace' to True.", "InvalidUserInput", "lora_name")
        await self.worker.run(self.engine.load_adapter, name, path, bounded=False)
        log.info("loaded adapter %s from %s", name, path)
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        name = body.get("lora_name")
        if not isinstance(name, str) or not name:
            raise ServingError(400, "'lora_name' needs to be provided to unload a LoRA adapter.", param="lora_name")
        if name not in self.engine.adapters:
            raise ServingError(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError", "lora_name")
        await self.worker.run(self.engine.unload_adapter, name, bounded=False)
        log.info("unloaded adapter %s", name)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")


HUNG_UP = "ft_hung_up"  # set on a streamed response whose client left before its end


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body, or 400: not JSON, not an object, nested too deep, or holding text that is not valid Unicode."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ServingError(400, f"the request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the json module recurses once per level
        raise ServingError(400, f"the request body is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    if not isinstance(body, dict):
        raise ServingError(400, "the request body must be a JSON object")
    problem = body_problem(body)
    if problem:
        raise ServingError(400, problem[0], param=problem[1])
    return body


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ServingError(400, f"{key} must be a number in [{low:g}, {high:g}], not {shown(value)}", param=key)
    return float(value)


async def serve_forever(server: ModelServer, host: str, port: int,
                        on_ready: Callable[[str], Awaitable[None]] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; on_ready(url) runs once the port answers (e.g. re-register adapters)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    url = await server.start(host, port)
    try:
        if on_ready is not None:
            await on_ready(url)
        await stopping.wait()
    finally:
        await server.stop()
