"""Finding the gaps one viewer may see: storage.gaps clusters the window's unanswered questions with the retrieval
index's embedder, in a worker thread (embedding and clustering take seconds; Slack's acks must not wait), and the
viewer's scope leaves out what they may not see. App Home keeps what it found a while (GapsCache)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from bot.deps import Deps
from bot.gaps.rules import Shown, visible
from storage import audience
from storage.models import utcnow

HOME_WINDOW = timedelta(days=7)


class NoEmbedder(RuntimeError):
    """Retrieval is off (FT_RETRIEVAL) or its embedding model is not installed: questions cannot be grouped."""


async def find(deps: Deps, *, since: datetime, channel: str | None) -> list[Shown]:
    """The gaps since `since` that a viewer in `channel` may see (None: App Home, scoped as a DM), biggest first."""
    from storage.gaps import find_gaps  # scikit-learn comes with it: only when gaps are asked for

    if deps.retriever is None:
        raise NoEmbedder("retrieval is off")
    embedder = deps.retriever.embedder

    def run(session) -> list[Shown]:
        scope = audience.scope(session, channel)
        return visible(find_gaps(session, embedder, since=since, scope=scope), scope)

    return await deps.db(run)


class GapsCache:
    """The gaps App Home shows (the last HOME_WINDOW, scoped as a DM), found again at most every `fresh_s`: the
    Home tab opens often, and finding takes seconds. One search at a time; the others wait for its result."""

    def __init__(self, fresh_s: float = 600.0) -> None:
        self.fresh_s = fresh_s
        self._found: tuple[float, list[Shown]] | None = None
        self._lock = asyncio.Lock()

    def fresh(self) -> list[Shown] | None:
        if self._found and time.monotonic() - self._found[0] < self.fresh_s:
            return self._found[1]
        return None

    async def refresh(self, deps: Deps) -> list[Shown]:
        async with self._lock:
            if (found := self.fresh()) is not None:  # found while this one waited
                return found
            found = await find(deps, since=utcnow() - HOME_WINDOW, channel=None)
            self._found = (time.monotonic(), found)
            return found

    def forget(self) -> None:
        """An answer was written: the next Home tab finds the gaps again."""
        self._found = None


def home_cache(deps: Deps) -> GapsCache:
    if deps.memory.gaps is None:
        deps.memory.gaps = GapsCache()
    return deps.memory.gaps
