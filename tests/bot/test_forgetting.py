"""The approval request's warnings and the preference stage, as an admin sees them: a version whose general probe
fell too far says so, its Approve button asks to confirm, and a click that skipped the dialog deploys nothing; the
preference stage shows SFT alone and SFT + preference side by side. Real Bolt over signed HTTP, the fake Slack Web
API, the announcer posting to the approvals channel, a stub model server behind the deployment controller."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from bot.approvals import render as approval
from bot.approvals.announcer import Announcer
from bot.server import serve_http
from core.contract import EvalScores, LiveOutcomes, Outcomes, PreferenceStage, RetrievalScores, Scores, VersionMetrics
from core.states import JobStatus, VersionStatus
from fakes.fake_slack import FakeSlack
from fakes.signed import SlackSender
from ftbot import wiring
from storage.models import ModelVersion, TrainingJob, utcnow
from tests.bot.conftest import ADMIN, CURATOR, OTHER, bot_settings, command_reply

CHANNEL = "CAPPROVE"


def scores(right: int, wrong: int, dont_know: int, key_fact: float, probe: float) -> Scores:
    return Scores(key_fact=key_fact, probe=probe, with_retrieval=RetrievalScores(key_fact=key_fact),
                  sent=Outcomes(n=20, right=right, wrong=wrong, dont_know=dont_know, n_offstore=5, offstore_refused=4))


def metrics(base_probe: float, new_probe: float, preference: PreferenceStage | None = None) -> dict:
    new = scores(9, 2, 9, 0.6, new_probe)
    return VersionMetrics(key_fact=0.6, probe=new_probe, eval=EvalScores(
        n_validation=20, base=scores(3, 2, 15, 0.3, base_probe), new=new), preference=preference).to_json()


def stage(kept: bool) -> PreferenceStage:
    return PreferenceStage(
        records=12, trained=True, kept=kept,
        reason=("SFT + preference gains 2 right answers and loses on nothing" if kept else
                "SFT + preference adds 1 wrong answer on held-out questions, so SFT alone goes forward"),
        sft=scores(9, 2, 9, 0.6, 0.70), preferred=scores(11, 2 if kept else 3, 7, 0.65, 0.69),
        sft_live=LiveOutcomes(agrees=3, other=1, declined=3),
        preferred_live=LiveOutcomes(agrees=4, other=1, declined=2),
        config={"loss_type": "sigmoid+sft", "beta": 0.1}, train={"steps": 12, "wall_s": 40.2})


def add_version(store, name: str, version_metrics: dict) -> int:
    """A finished job and the version it made, as the worker leaves them; the job's id."""
    with store.session() as s:
        job = TrainingJob(status=JobStatus.SUCCEEDED, requested_by=CURATOR, finished_at=utcnow())
        s.add(job)
        s.flush()
        version = ModelVersion(name=name, job_id=job.id, adapter_path=f"/adapters/{name}", metrics=version_metrics)
        s.add(version)
        s.flush()
        job.version_id = version.id
        return job.id


def text_of(message: dict) -> str:
    parts = []
    for b in message.get("blocks") or []:
        if b.get("text"):
            parts.append(b["text"]["text"])
        parts += [e.get("text", "") for e in b.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


def approve_button(message: dict) -> dict:
    return next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == approval.APPROVE)


def assert_within_block_kit_limits(message: dict[str, Any]) -> None:
    """Slack's documented limits for what the approval request uses: 50 blocks, a section's text 3,000 characters, a
    context's 10 elements, a button's label 75 and value 2,000, a confirm dialog's title 100, text 300, buttons 30."""
    blocks = message["blocks"]
    assert len(blocks) <= 50
    for b in blocks:
        assert len(b.get("block_id", "")) <= 255
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "context":
            assert len(b["elements"]) <= 10 and all(len(e["text"]) <= 3000 for e in b["elements"])
        for e in b.get("elements", []) if b["type"] == "actions" else []:
            assert len(e["text"]["text"]) <= 75 and len(e["value"]) <= 2000
            confirm = e.get("confirm")
            if confirm:
                assert len(confirm["title"]["text"]) <= 100 and len(confirm["text"]["text"]) <= 300
                assert len(confirm["confirm"]["text"]) <= 30 and len(confirm["deny"]["text"]) <= 30


class Desk:
    """The approvals channel: the announcer posts each finished job's request; an admin clicks its buttons."""

    def __init__(self, store, slack, send, model, announcer):
        self.store, self.slack, self.send, self.model, self.announcer = store, slack, send, model, announcer

    async def request(self, name: str, version_metrics: dict) -> dict:
        job_id = add_version(self.store, name, version_metrics)
        assert await self.announcer.tick() == 1
        with self.store.session() as s:
            job = s.get(TrainingJob, job_id)
        return self.slack.find(CHANNEL, job.slack_ts)

    async def click(self, user: str, message: dict, action_id: str = approval.APPROVE) -> None:
        status, _ = await self.send.action(user, action_id, approve_button(message)["value"], channel=CHANNEL,
                                           message={"ts": message["ts"], "blocks": message["blocks"],
                                                    "text": message.get("text", "")})
        assert status == 200

    def status(self, name: str) -> str:
        with self.store.session() as s:
            return s.exec(select(ModelVersion).where(ModelVersion.name == name)).one().status


@pytest.fixture
async def desk(store, model_stub):
    slack = FakeSlack().channel(CHANNEL, "ft-approvals")
    for uid, name in ((CURATOR, "Cora"), (ADMIN, "Ada"), (OTHER, "Otto")):
        slack.user(uid, name)
    await slack.start()
    app, deps, metrics = wiring.bot(bot_settings(slack, model_stub.url), store=store, announce_every_s=3600)
    runner, url = await serve_http(app, deps, metrics)
    send = SlackSender(url + "/slack/events", response_url=slack.response_url)
    yield Desk(store, slack, send, model_stub, Announcer(deps, app.client, edit_every_s=0))
    await send.close()
    await runner.cleanup()
    await slack.stop()


async def test_a_probe_drop_from_75_to_58_percent_warns_and_approve_asks_to_confirm(desk):
    message = await desk.request("ft-1-v1", metrics(0.75, 0.58))
    text = text_of(message)
    assert "fell from 75% (base) to 58%" in text and "a 17% drop; warned above 10%" in text
    assert "Approve asks you to confirm" in text
    confirm = approve_button(message)["confirm"]
    assert "fell from 75% (base) to 58%" in confirm["text"]["text"] and confirm["style"] == "danger"
    assert_within_block_kit_limits(message)

    # A click that did not come through the dialog (a request posted before the button carried it) deploys
    # nothing: the request stays, its Approve button now asks, and the admin is told.
    bare = {**message, "blocks": [{**b, "elements": [{k: v for k, v in e.items() if k != "confirm"}
                                                     for e in b["elements"]]} if b["type"] == "actions" else b
                                  for b in message["blocks"]]}
    await desk.click(ADMIN, bare)
    told = await desk.slack.wait_for(lambda: [r for r in desk.slack.responses if "needs confirming" in r["text"]])
    assert "Press Approve again" in told[0]["text"]
    assert desk.status("ft-1-v1") == VersionStatus.AWAITING_APPROVAL and not desk.model.adapters
    again = desk.slack.find(CHANNEL, message["ts"])
    assert approve_button(again)["confirm"]["text"]["text"] == confirm["text"]["text"]

    # Through the dialog (Slack sends the click only after "Deploy anyway"): deployed.
    await desk.click(ADMIN, again)
    await desk.slack.wait_for(lambda: "Approved by" in text_of(desk.slack.find(CHANNEL, message["ts"])), timeout=30)
    assert desk.status("ft-1-v1") == VersionStatus.DEPLOYED and set(desk.model.adapters) == {"ft-1-v1"}


async def test_a_drop_of_5_points_neither_warns_nor_asks(desk):
    message = await desk.request("ft-1-v1", metrics(0.75, 0.70))
    assert "fell from" not in text_of(message) and "confirm" not in json.dumps(message["blocks"])
    await desk.click(ADMIN, message)
    await desk.slack.wait_for(lambda: "Approved by" in text_of(desk.slack.find(CHANNEL, message["ts"])), timeout=30)
    assert desk.status("ft-1-v1") == VersionStatus.DEPLOYED


async def test_someone_who_is_not_an_admin_cannot_approve_a_warned_version_either(desk):
    message = await desk.request("ft-1-v1", metrics(0.75, 0.58))
    await desk.click(OTHER, message)
    await desk.slack.wait_for(lambda: any("Only admins" in r["text"] for r in desk.slack.responses))
    assert desk.status("ft-1-v1") == VersionStatus.AWAITING_APPROVAL and not desk.model.adapters


async def test_the_preference_stage_shows_both_sides_and_the_one_that_goes_forward(desk):
    message = await desk.request("ft-1-v1", metrics(0.75, 0.69, stage(kept=True)))
    text = text_of(message)
    assert "trained after SFT on 12 preference record(s)" in text
    held_out = [r for r in text.replace("```", "\n").splitlines() if "%" in r and r[2:].startswith("SFT")]
    assert [r.split()[-5:] for r in held_out] == [["9/20", "2/20", "9/20", "60%", "70%"],
                                                  ["11/20", "2/20", "7/20", "65%", "69%"]]
    assert held_out[1].startswith("→ SFT + preference") and held_out[0].startswith("  SFT alone")
    live = [r for r in text.replace("```", "\n").splitlines() if "%" not in r and r[2:].startswith("SFT")]
    assert [r.split()[-3:] for r in live] == [["3/7", "1/7", "3/7"], ["4/7", "1/7", "2/7"]]
    assert "*Goes forward: SFT + preference*" in text and "gains 2 right answers" in text
    assert "loss_type=sigmoid+sft" in text and "(forgetting)" in text
    assert_within_block_kit_limits(message)

    dropped = text_of(await desk.request("ft-2-v1", metrics(0.75, 0.70, stage(kept=False))))
    assert "*Goes forward: SFT alone* (the preference adapter is dropped)" in dropped
    assert "adds 1 wrong answer" in dropped
    assert [r for r in dropped.replace("```", "\n").splitlines() if r.startswith("→ ")][0].startswith("→ SFT alone")

    skipped = PreferenceStage(records=2, reason="2 preference records; the stage needs 20")
    off = text_of(await desk.request("ft-3-v1", metrics(0.75, 0.70, skipped)))
    assert "*Preference stage:* did not run: 2 preference records; the stage needs 20" in off
    assert "SFT alone" not in off
    older = text_of(await desk.request("ft-4-v1", metrics(0.75, 0.70)))  # trained before the stage existed
    assert "Preference stage" not in older


def test_the_approval_request_stays_within_block_kits_limits_whatever_it_holds():
    huge = "Why <@U999> & QM-E42? " + "very " * 3000
    stage_ = stage(kept=True).model_copy(update={"reason": huge, "config": {f"k{i}": "v" * 50 for i in range(500)},
                                                 "records": 10**9})
    raw = {**metrics(0.9, 0.01, stage_),
           "samples": [{"question": huge, "reference": huge, "new": huge, "sent": huge,
                        "new_with_retrieval": huge}] * 20,
           "long_examples": [{"question": huge}] * 100,
           "live": {"n": 7, "deployed": {"agrees": 1}, "new": {"agrees": 2},
                    "examples": [{"question": huge, "team": huge, "deployed": huge, "new": huge}] * 20}}
    name = "ft-" + "9" * 60
    version = ModelVersion(name=name, job_id=2, metrics=VersionMetrics.from_json(raw).to_json(),
                           status=VersionStatus.AWAITING_APPROVAL,
                           below_deployed=True, flags=[{"code": "erased_data", "reason": huge}] * 60)
    job = TrainingJob(id=2, status=JobStatus.SUCCEEDED, requested_by=CURATOR, reason=huge[:500])
    message = approval.approval_request(job, version)
    assert_within_block_kit_limits(message)
    assert "&lt;@U999&gt;" in text_of(message) and "<@U999>" not in text_of(message)
    assert "fell from 90% (base) to 1%" in approve_button(message)["confirm"]["text"]["text"]


async def test_ft_versions_warns_and_ft_deploy_asks_for_yes(bot, store):
    add_version(store, "ft-1-v1", metrics(0.75, 0.58))
    add_version(store, "ft-2-v1", metrics(0.75, 0.70, stage(kept=True)))
    lines = (await command_reply(bot, "versions", OTHER))["text"].splitlines()
    warned, fine = next(x for x in lines if "ft-1-v1" in x), next(x for x in lines if "ft-2-v1" in x)
    assert "fell from 75% (base) to 58%" in warned and "fell from" not in fine
    assert "SFT + preference kept" in fine

    refused = (await command_reply(bot, "deploy ft-1-v1", ADMIN))["text"]
    assert "needs confirming" in refused and "`/ft deploy ft-1-v1 --yes`" in refused
    with store.session() as s:
        assert s.exec(select(ModelVersion).where(ModelVersion.name == "ft-1-v1")).one().status == \
            VersionStatus.AWAITING_APPROVAL
    assert not bot.model.adapters

    done = (await command_reply(bot, "deploy ft-1-v1 --yes", ADMIN))["text"]
    assert "ft-1-v1 is deployed" in done and set(bot.model.adapters) == {"ft-1-v1"}
    assert "ft-2-v1 is deployed" in (await command_reply(bot, "deploy ft-2-v1", ADMIN))["text"]  # no warning
