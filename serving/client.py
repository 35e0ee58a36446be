"""Async client for the serving contract (vLLM's OpenAI-compatible API, or the embedded server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp

from core.contract import adapter_name_problem


class ModelServerError(Exception):
    """The server answered with an error (status and its message)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"model server answered {status}: {message}")
        self.status = status
        self.message = message


class AdapterAlreadyLoaded(ModelServerError):
    """load_lora_adapter refused a name the server already lists (serving contract: 400)."""


class ModelServerUnavailable(Exception):
    """No answer in time, or no connection."""


class ModelClient:
    """api_key: sent as `Authorization: Bearer <key>` on every request (vLLM's --api-key, FT_MODEL_SERVER_API_KEY)."""

    def __init__(self, base_url: str, timeout_s: float = 30.0, session: aiohttp.ClientSession | None = None, *,
                 api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session = session
        self._own_session = session is None

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, json: dict | None = None,
                       timeout: aiohttp.ClientTimeout | None = None) -> tuple[int, Any]:
        http = await self._http()
        try:
            async with http.request(method, self.base_url + path, json=json, timeout=timeout or self.timeout,
                                    headers=self._headers) as resp:
                return resp.status, await self._body(resp)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, aiohttp.InvalidURL) as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> ModelServerUnavailable:
        if isinstance(exc, aiohttp.InvalidURL):
            return ModelServerUnavailable(f"{self.base_url!r} is not a URL the client can reach")
        return ModelServerUnavailable(f"{self.base_url}: {exc.__class__.__name__} {exc}".strip())

    async def _body(self, resp: aiohttp.ClientResponse) -> Any:
        """The response's JSON or text; ModelServerError for an error status."""
        ctype = resp.headers.get("Content-Type", "")
        body: Any = await resp.json() if "json" in ctype else await resp.text()
        if resp.status == 401:
            raise ModelServerError(401, f"{_error_message(body)}: the server wants another API key"
                                        f"{'' if self._headers else ' (none was sent)'}")
        if resp.status >= 400:
            raise ModelServerError(resp.status, _error_message(body))
        return body

    async def models(self) -> list[dict[str, Any]]:
        _, body = await self._request("GET", "/v1/models")
        return list(body.get("data", []))

    async def chat(self, model: str, messages: list[dict[str, str]], *, max_tokens: int = 256,
                   temperature: float = 0.0, timeout_s: float | None = None, stop: list[str] | None = None) -> str:
        """The answer's text; with stop, generation ends at the first of those strings (left out of the text)."""
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else None
        _, body = await self._request("POST", "/v1/chat/completions",
                                      _chat_payload(model, messages, max_tokens, temperature, stop), timeout)
        return body["choices"][0]["message"]["content"]

    async def chat_stream(self, model: str, messages: list[dict[str, str]], *, max_tokens: int = 256,
                          temperature: float = 0.0, timeout_s: float | None = None,
                          stop: list[str] | None = None) -> AsyncIterator[str]:
        """The answer's text as the server writes it (OpenAI's server-sent events, which vLLM and `ft serve` both
        send): each item is the next piece. The same errors as chat(), raised before the first piece."""
        payload = {**_chat_payload(model, messages, max_tokens, temperature, stop), "stream": True}
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else self.timeout
        http = await self._http()
        try:
            async with http.post(self.base_url + "/v1/chat/completions", json=payload, timeout=timeout,
                                 headers=self._headers) as resp:
                if resp.status >= 400:
                    await self._body(resp)  # raises ModelServerError, before any piece
                async for raw in resp.content:  # one line at a time
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue  # blank separators and comments (": ping")
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    for piece in _pieces(data):
                        yield piece
            raise ModelServerUnavailable(f"{self.base_url}: the answer's stream ended before [DONE]")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError,
                aiohttp.InvalidURL) as exc:  # before ValueError: InvalidURL is one
            raise self._unreachable(exc) from exc
        except ValueError as exc:  # aiohttp: a line longer than its buffer
            raise ModelServerError(502, f"the server sent a line the client cannot read: {exc}") from exc

    async def complete(self, model: str, messages: list[dict[str, str]], *, max_tokens: int = 256,
                       temperature: float = 0.0, timeout_s: float | None = None, stop: list[str] | None = None,
                       on_text: Callable[[str], Awaitable[None]] | None = None) -> str:
        """The whole answer's text; with on_text, streamed, and each piece handed to on_text as it arrives (the
        one path for callers that show an answer as it is written and for those that wait for it)."""
        if on_text is None:
            return await self.chat(model, messages, max_tokens=max_tokens, temperature=temperature,
                                   timeout_s=timeout_s, stop=stop)
        pieces: list[str] = []
        async for piece in self.chat_stream(model, messages, max_tokens=max_tokens, temperature=temperature,
                                            timeout_s=timeout_s, stop=stop):
            pieces.append(piece)
            await on_text(piece)
        return "".join(pieces)

    async def load_adapter(self, name: str, path: str) -> str:
        """Loaded: the server's answer. AdapterAlreadyLoaded when it refused because it lists that name already
        (told from the model list, not from the wording of vLLM's message). A name no server takes is refused
        here with 400, before it is sent."""
        problem = adapter_name_problem(name)
        if problem:
            raise ModelServerError(400, problem)
        try:
            _, body = await self._request("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        except ModelServerError as exc:
            if exc.status == 400 and name in {c.get("id") for c in await self.models() if c.get("parent")}:
                raise AdapterAlreadyLoaded(exc.status, exc.message) from exc
            raise
        return str(body)

    async def unload_adapter(self, name: str) -> str:
        _, body = await self._request("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        return str(body)

    async def base_model(self) -> str:
        """The served base model's name: the listed model that is no adapter."""
        for card in await self.models():
            if not card.get("parent"):
                return card["id"]
        raise ModelServerError(500, "the server lists no base model")


def _chat_payload(model: str, messages: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: list[str] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens,
                               "temperature": temperature}
    if stop:
        payload["stop"] = stop
    return payload


def _pieces(data: str) -> list[str]:
    """The text in one streamed chunk (`data: …`); ModelServerError for an error event (vLLM sends an error after
    the stream began as one) or what is not a chunk."""
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise ModelServerError(502, f"the server sent an event that is not JSON: {data[:200]!r}") from exc
    if not isinstance(event, dict):
        raise ModelServerError(502, f"the server sent an event that is not a chunk: {data[:200]!r}")
    error = event.get("error")
    if error:
        code = error.get("code") if isinstance(error, dict) else None
        raise ModelServerError(code if isinstance(code, int) and code >= 400 else 500, _error_message(event))
    return [piece for choice in event.get("choices") or [] if isinstance(choice, dict)
            for piece in [(choice.get("delta") or {}).get("content")] if isinstance(piece, str) and piece]


def _error_message(body: Any) -> str:
    # vLLM: {"error": {"message": …}} (newer) or {"message": …} (ErrorResponse); plain text otherwise.
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(body.get("message") or err or body)
    return str(body)[:500]
