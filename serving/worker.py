"""The one thread the embedded model server's model lives on, with a bounded queue of generations in front of it:
the event loop stays free to answer /health and /v1/models while a generation runs."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from serving.errors import ServingError


class ModelWorker:
    """One thread that owns the model, with a bounded queue of generations in front of it."""

    def __init__(self, max_queue: int = 16):
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        self.max_queue = max_queue
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ft-model")
        self._lock = threading.Lock()
        self.waiting = 0  # submitted, not started
        self.running = 0  # 0 or 1

    async def run(self, fn: Callable[..., Any], *args: Any, bounded: bool = True,
                  stop_event: threading.Event | None = None, **kwargs: Any) -> Any:
        """Run fn on the model thread; 503 at once when `max_queue` generations already wait (bounded)."""
        with self._lock:
            if bounded and self.waiting >= self.max_queue:
                raise ServingError(503, f"server busy: {self.waiting} requests queued")
            self.waiting += 1

        def job() -> Any:
            with self._lock:
                self.waiting -= 1
                self.running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        def forget_cancelled(f: Future) -> None:
            if f.cancelled():  # never started: it no longer waits
                with self._lock:
                    self.waiting -= 1

        try:
            future = self._pool.submit(job)
        except RuntimeError as exc:  # shut down
            with self._lock:
                self.waiting -= 1
            raise ServingError(503, "server is shutting down") from exc
        future.add_done_callback(forget_cancelled)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if stop_event is not None:  # the client hung up: stop at the next token
                stop_event.set()
            future.cancel()
            raise

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
