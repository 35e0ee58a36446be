"""What every listener needs, built once by `ft bot` and handed to each surface's register()."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlmodel import Session

from bot.backlog import Backlog
from bot.periodic import Periodic
from bot.slack.api import People
from bot.slack.audience import ChannelKinds
from bot.slack.threads import Rules
from core.contract import GroundingSpec, ReuseSpec
from serving.client import ModelClient
from storage import Store
from storage.channels import Ladder

T = TypeVar("T")


@dataclass
class Memory:
    """What listeners remember between events, per app (lost on restart: each use says what happens then)."""

    people: People | None = None  # names and bot-ness of Slack users, looked up once each
    # (curator, "example" | "question", id) → the response_url of the review list an Edit or Answer came from.
    edit_origins: dict[tuple[str, str, int], str] = field(default_factory=dict)
    deciding: dict[str, str] = field(default_factory=dict)  # version name → admin whose click is being carried out
    gaps: Any = None  # bot.gaps.finding.GapsCache: the knowledge gaps App Home shows, made at first use


@dataclass(kw_only=True)
class Deps:
    store: Store
    model: ModelClient
    # serving.retrieval.Retriever: the nearest approved pairs go in front of every question (None: off).
    retriever: Any
    admins: frozenset[str]
    curators: frozenset[str]
    agents: frozenset[str]  # the support team besides curators and admins: they act on drafts
    # Settings' values, filled by ftbot.wiring: no defaults here, so no second copy of them to drift.
    label_emoji: str
    max_answer_chars: int
    approvals_channel: str
    gaps_channel: str  # the curators' channel: the weekly knowledge-gaps digest (bot.gaps.digest); "": none
    answer_timeout_s: float
    answer_max_tokens: int  # a support answer is short; a rambling model is cut here
    system_prompt: str  # the same prompt the trainer teaches with
    grounding: GroundingSpec  # when an answer is sent rather than "I don't know" (core.grounding)
    reuse: ReuseSpec  # when an approved answer is given as it is, without asking the model (core.reuse)
    draft_ttl_h: float  # a draft nobody acts on expires after this
    ladder: Ladder  # what earns auto mode (storage.channels)
    shutdown_grace_s: float  # on SIGTERM, in-flight listeners get this long, then are cancelled (bot.shutdown)
    resolution_window_h: float  # an unconfirmed auto answer with no follow-up this long counts as resolved (assumed)
    announce_every_s: float = 3.0  # how often the approvals channel's job messages are brought up to date
    workspace_url: str = ""  # https://acme.slack.com/ (auth.test), for links to the source threads
    backlog: Backlog = field(default_factory=Backlog)
    channels: ChannelKinds = field(default_factory=ChannelKinds)  # each channel's kind (storage.audience)
    data_dir: Path | None = None  # FT_DATA_DIR: `/ft forget` erases text from its files too
    # What the bot repeats in its own loop (ftbot.wiring builds it), started and stopped with its HTTP app.
    periodic: list[Periodic] = field(default_factory=list)
    memory: Memory = field(default_factory=Memory)

    @property
    def rules(self) -> Rules:
        return Rules(curators=self.curators | self.admins, max_answer_chars=self.max_answer_chars)

    def people(self, client: Any) -> People:
        """The one cache of Slack users' names, for every surface that reads a thread. Made with the first
        request's client: Bolt gives each request its own, all with the same token."""
        if self.memory.people is None:
            self.memory.people = People(client)
        return self.memory.people

    def is_curator(self, user: str | None) -> bool:
        return bool(user) and (user in self.curators or user in self.admins)

    def is_team(self, user: str | None) -> bool:
        """Agents, curators and admins: their messages are no customer questions, and they act on drafts."""
        return bool(user) and (user in self.agents or self.is_curator(user))

    def is_admin(self, user: str | None) -> bool:
        return bool(user) and user in self.admins

    async def db(self, fn: Callable[[Session], T]) -> T:
        """Run one transaction off the event loop, so acks are never held up by the database."""

        def run() -> T:
            with self.store.session() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    async def first_delivery(self, body: dict) -> bool:
        """The durable half of retry handling (the app's middleware keeps the fast, in-memory half):
        a retry that reaches another replica, or this one after a restart, is still handled once."""
        from storage.events import first_delivery

        event_id = body.get("event_id")
        return not event_id or await self.db(lambda s: first_delivery(s, event_id))
