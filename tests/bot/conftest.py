"""The bot under test: the real Bolt app over real HTTP, a fake Slack Web API, a stub model server."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import select

from bot.deps import Deps
from bot.server import serve_http
from fakes.fake_slack import FakeSlack
from fakes.signed import SECRET, SlackSender
from ftbot import wiring
from ftbot.settings import Settings
from storage.models import Example
from tests.model_stub import ModelStub

CURATOR, ADMIN, AGENT, ASKER, OTHER = "UCURATOR", "UADMIN", "UAGENT", "UASKER", "UOTHER"


@dataclass
class Bot:
    slack: FakeSlack
    send: SlackSender
    deps: Deps
    model: ModelStub
    url: str
    app: Any = None  # the Bolt app (its client talks to the fake Slack)
    metrics: Any = None


@pytest.fixture
async def model_stub():
    stub = await ModelStub().start()
    yield stub
    await stub.stop()


def bot_settings(slack: FakeSlack, model_url: str, **values) -> Settings:
    """Settings as `ft bot` reads them from the environment, pointed at the fake Slack and the model stub."""
    return Settings(**{"admins": {ADMIN}, "curators": {CURATOR}, "agents": {AGENT}, "approvals_channel": "CAPPROVE",
                       "model_server_url": model_url, "answer_timeout_s": 2.0, "retrieval": False,
                       "slack_bot_token": "xoxb-test-token", "slack_signing_secret": SECRET,
                       "slack_api_url": slack.api_url, **values})


@pytest.fixture
async def bot(store, model_stub):
    slack = FakeSlack().channel("CSUP", "support").channel("DASKER", "dm")
    for uid, name in ((CURATOR, "Cora"), (ADMIN, "Ada"), (AGENT, "Aaron"), (ASKER, "Mia"), (OTHER, "Otto")):
        slack.user(uid, name)
    await slack.start()
    # Wired as `ft bot` wires it, on this test's store.
    app, deps, metrics = wiring.bot(bot_settings(slack, model_stub.url), store=store)
    runner, url = await serve_http(app, deps, metrics)
    send = SlackSender(url + "/slack/events", response_url=slack.response_url)
    yield Bot(slack=slack, send=send, deps=deps, model=model_stub, url=url, app=app, metrics=metrics)
    await send.close()
    await runner.cleanup()
    await slack.stop()


@pytest.fixture
async def drafting_bot(bot):
    """The bot with CSUP in draft mode, its cards going to CDRAFTS (tests.bot.drafting has what those tests use)."""
    from tests.bot.drafting import DRAFTS, set_mode

    bot.slack.channel(DRAFTS, "support-drafts")
    assert "now runs in *draft" in await set_mode(bot, "draft")
    return bot


def stored_examples(store) -> list[Example]:
    with store.session() as s:
        return list(s.exec(select(Example)))


async def command_text(bot: Bot, text: str, user: str, *, within_s: float | None = None) -> str:
    """A `/ft` command's HTTP answer (status 200; within `within_s` seconds where given), as its text."""
    started = time.perf_counter()
    status, body = await bot.send.command(text, user)
    elapsed = time.perf_counter() - started
    assert status == 200 and (within_s is None or elapsed < within_s), (status, elapsed)
    return json.loads(body)["text"] if body.startswith("{") else body


async def command_reply(bot: Bot, text: str, user: str, *, within_s: float | None = None) -> dict[str, Any]:
    """A command answered after an empty ack: what it then sent to the response_url."""
    before = len(bot.slack.responses)
    assert await command_text(bot, text, user, within_s=within_s) == ""
    reply = await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])
    assert reply["response_type"] == "ephemeral"
    return reply


# Bolt runs each listener after the ack as a task of this coroutine (slack_bolt.listener.asyncio_runner); the bot
# under test serves on the test's own event loop, so its tasks are the test's to see.
def listener_runs() -> list[asyncio.Task]:
    """The listener runs started by the requests so far that have not finished yet (found as the bot's shutdown
    finds them: bot.shutdown.listener_tasks)."""
    from bot.shutdown import listener_tasks

    return list(listener_tasks())


async def settled(bot: Bot, timeout: float = 15.0) -> None:
    """Every listener the requests so far started has finished, and so has the work it queued on the backlog:
    proof the code ran, before a negative test looks for what did not happen (a fixed sleep proves nothing when the
    listener is slower than the sleep). test_server checks that listener_runs() sees a run in progress."""
    await bot.slack.wait_for(lambda: not listener_runs(), timeout)
    await asyncio.wait_for(bot.deps.backlog.idle(), timeout)
