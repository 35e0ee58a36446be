"""A stand-in for `vllm serve` in supervisor tests: answers /health and the LoRA load route, then dies.

Usage: python fake_vllm.py PORT LOG LIFETIME_S. Every load request is appended to LOG as
"<pid> <lora_name> <lora_path>"; the process exits with code 3 after LIFETIME_S seconds (a crash).
It also checks that it was started with VLLM_ALLOW_RUNTIME_LORA_UPDATING=1, as vLLM requires.
"""

import asyncio
import os
import sys

from aiohttp import web


async def main(port: int, log: str, lifetime_s: float) -> None:
    loaded: set[str] = set()
    runtime_updates = os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING") == "1"

    async def health(_: web.Request) -> web.Response:
        return web.Response()

    async def load(request: web.Request) -> web.Response:
        if not runtime_updates:  # vLLM does not register the route then
            return web.json_response({"detail": "Not Found"}, status=404)
        body = await request.json()
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {body['lora_name']} {body['lora_path']}\n")
        if body["lora_name"] in loaded:
            return web.json_response({"error": {"message": f"The lora adapter '{body['lora_name']}' has already been "
                                                           "loaded.", "type": "InvalidUserInput", "code": 400}},
                                     status=400)
        loaded.add(body["lora_name"])
        return web.Response(text=f"Success: LoRA adapter '{body['lora_name']}' added successfully.")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/v1/load_lora_adapter", load)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.sleep(lifetime_s)
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
