"""The bot under test: the real Bolt app over real HTTP, a fake Slack Web API, a stub model server."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.app import build_app
from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.server import serve_http
from serving.client import ModelClient
from tests.fake_slack import FakeSlack
from tests.model_stub import ModelStub
from tests.signed import SECRET, SlackSender

CURATOR, ADMIN, AGENT, ASKER, OTHER = "UCURATOR", "UADMIN", "UAGENT", "UASKER", "UOTHER"


@dataclass
class Bot:
    slack: FakeSlack
    send: SlackSender
    deps: Deps
    model: ModelStub
    url: str


@pytest.fixture
async def model_stub():
    stub = await ModelStub().start()
    yield stub
    await stub.stop()


@pytest.fixture
async def bot(store, model_stub):
    slack = FakeSlack().channel("CSUP", "support").channel("DASKER", "dm")
    for uid, name in ((CURATOR, "Cora"), (ADMIN, "Ada"), (AGENT, "Aaron"), (ASKER, "Mia"), (OTHER, "Otto")):
        slack.user(uid, name)
    await slack.start()
    deps = Deps(store=store, model=ModelClient(model_stub.url, timeout_s=2.0), admins=frozenset({ADMIN}),
                curators=frozenset({CURATOR}), approvals_channel="CAPPROVE", answer_timeout_s=2.0)
    metrics = BotMetrics()
    app = build_app(deps, token="xoxb-test-token", signing_secret=SECRET, api_url=slack.api_url, metrics=metrics)
    runner, url = await serve_http(app, deps, metrics)
    send = SlackSender(url + "/slack/events", response_url=slack.response_url)
    yield Bot(slack=slack, send=send, deps=deps, model=model_stub, url=url)
    await send.close()
    await runner.cleanup()
    await slack.stop()
