"""Who may call a model server: vLLM's Bearer-key check (the embedded server applies it as vLLM's --api-key does),
and where a server may listen without a key. Its own module: `ft serve` and the vLLM launcher both check the address
before they load a model."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets

from aiohttp import web

# vLLM's AuthenticationMiddleware guards these prefixes (vllm/entrypoints/serve/middleware/authenticate.py).
GUARDED_PREFIX = ("/v1", "/v2", "/inference", "/cohere")


class BearerAuth:
    """vLLM's check: the Bearer token's SHA-256 digest against the key's, in constant time."""

    def __init__(self, api_key: str):
        if not api_key:
            raise ValueError("an empty API key guards nothing")
        self._digest = hashlib.sha256(api_key.encode("utf-8")).digest()

    def allows(self, request: web.Request) -> bool:
        if request.method == "OPTIONS" or not request.path.startswith(GUARDED_PREFIX):
            return True
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return secrets.compare_digest(hashlib.sha256(token.encode("utf-8")).digest(), self._digest)


def bind_problem(host: str, api_key: str | None) -> str | None:
    """Why a model server must not listen on `host` (None: it may). Without a key only a loopback address is
    allowed: anyone who reaches the port could otherwise unload the deployed version or load any directory."""
    if api_key:
        return None
    name = host.strip("[]")
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name == "localhost"
    if loopback:
        return None
    return (f"refusing to listen on {host or 'every interface'} without an API key: set FT_MODEL_SERVER_API_KEY "
            "(the bot and `ft` send it too), or listen on 127.0.0.1")
