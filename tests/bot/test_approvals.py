"""The whole loop on CPU with a tiny model: a job's progress and approval request in the approvals
channel → an admin's signed Approve → the embedded server serves the new adapter → the bot answers
with it → /ft rollback → the previous version answers again. Real Bolt over signed HTTP, the fake
Slack Web API, the real embedded model server over HTTP, real training."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.approvals import render as approval
from bot.approvals.announcer import Announcer
from bot.server import serve_http
from core.contract import JobProgress, VersionMetrics
from core.states import ExampleStatus, JobStatus, VersionStatus
from fakes.fake_slack import FakeSlack
from fakes.signed import SlackSender
from fakes.tiny_model import build_tiny_model
from ftbot import wiring
from storage.examples import NewExample, add_examples
from storage.jobs import enqueue
from storage.models import ModelVersion, TrainingJob
from storage.queue import claim, finish, set_progress
from tests.bot.conftest import ADMIN, ASKER, CURATOR, OTHER, bot_settings
from tests.trainer.conftest import ROWS as TRAIN_ROWS
from tests.trainer.conftest import tiny_config

CHANNEL = "CAPPROVE"
ROWS = TRAIN_ROWS[:5] + TRAIN_ROWS[6:7]  # the support pairs the trainer tests use


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("loop") / "tiny-llama")


@pytest.fixture
def cfg(tiny_base):
    return tiny_config(tiny_base, epochs=1, batch_size=4)


class Loop:
    def __init__(self, store, slack, send, server, announcer, cfg, data_dir):
        self.store, self.slack, self.send, self.server = store, slack, send, server
        self.announcer, self.cfg, self.data_dir = announcer, cfg, data_dir

    def start(self) -> int:
        """A job as a worker holds it: claimed, some progress reported."""
        with self.store.session() as s:
            job_id = enqueue(s, {}, CURATOR).id
        with self.store.session() as s:
            claim(s, "w1", 60, job_id=job_id)
            set_progress(s, job_id, JobProgress(step=3, total=12, loss=2.5, tokens_per_s=40.0, eta_s=30))
        self.job_id = job_id
        return job_id

    def run(self, job_id: int, seed: int) -> str:
        """Trained, evaluated and finished as the worker does it; the new version's name."""
        from dataclasses import replace

        from trainer.job import run_training

        version_id = run_training(self.store, job_id, replace(self.cfg, seed=seed), self.data_dir, val_percent=50)
        with self.store.session() as s:
            assert finish(s, job_id, "w1", JobStatus.SUCCEEDED, version_id=version_id)
            return s.get(ModelVersion, version_id).name

    def train(self, seed: int) -> str:
        return self.run(self.start(), seed)

    def job_message(self, job_id: int) -> dict:
        with self.store.session() as s:
            job = s.get(TrainingJob, job_id)
        assert job.slack_channel == CHANNEL and job.slack_ts
        return self.slack.find(CHANNEL, job.slack_ts)

    async def click(self, user: str, action_id: str, message: dict) -> None:
        status, _ = await self.send.action(user, action_id, _button_value(message, action_id), channel=CHANNEL,
                                           message={"ts": message["ts"], "blocks": message["blocks"],
                                                    "text": message.get("text", "")})
        assert status == 200

    async def ask(self, question: str, ts: str) -> str:
        """An @mention; the context line of the bot's reply in its thread (names the version)."""
        before = len(self.slack.calls_to("chat.postMessage"))
        status, _ = await self.send.event({"type": "app_mention", "user": ASKER, "text": f"<@UFTBOT> {question}",
                                           "ts": ts, "channel": "CSUP", "event_ts": ts})
        assert status == 200
        posts = await self.slack.wait_for(lambda: [p for p in self.slack.calls_to("chat.postMessage")[before:]
                                                   if p.get("thread_ts") == ts], timeout=20)
        return " ".join(e["text"] for b in posts[0]["blocks"] if b["type"] == "context" for e in b["elements"])

    def models(self) -> set[str]:
        return set(self.server.engine.adapters)

    def deployed(self) -> str | None:
        with self.store.session() as s:
            v = s.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.DEPLOYED)).first()
            return v.name if v else None


def _button_value(message: dict, action_id: str) -> str:
    return next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == action_id)


def _text(message: dict) -> str:
    parts = []
    for b in message.get("blocks") or []:
        if b.get("text"):
            parts.append(b["text"]["text"])
        parts += [e.get("text", "") for e in b.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


@pytest.fixture
async def loop(store, cfg, tmp_path):
    from serving.generation import Engine
    from serving.model_server import ModelServer

    server = ModelServer(Engine(cfg.base_model, max_lora_rank=64, threads=1))
    await server.start("127.0.0.1", 0)
    slack = FakeSlack().channel("CSUP", "support").channel(CHANNEL, "ft-approvals")
    for uid, name in ((CURATOR, "Cora"), (ADMIN, "Ada"), (ASKER, "Mia"), (OTHER, "Otto")):
        slack.user(uid, name)
    await slack.start()
    settings = bot_settings(slack, server.url, approvals_channel=CHANNEL, answer_timeout_s=30,
                            system_prompt=cfg.system_prompt)
    app, deps, metrics = wiring.bot(settings, store=store, announce_every_s=3600)  # the test ticks the announcer
    runner, url = await serve_http(app, deps, metrics)
    send = SlackSender(url + "/slack/events", response_url=slack.response_url)
    with store.session() as s:
        add_examples(s, [NewExample(f"slack:CSUP:{i}.0", q, a, status=ExampleStatus.APPROVED, approved_by=CURATOR)
                         for i, (q, a) in enumerate(ROWS)])
    yield Loop(store, slack, send, server, Announcer(deps, app.client, edit_every_s=0), cfg, tmp_path / "data")
    await send.close()
    await runner.cleanup()
    await slack.stop()
    await server.stop()


@pytest.mark.slow
async def test_progress_approval_deploy_answer_and_rollback(loop):
    # A running job shows its progress in the approvals channel, in one message, edited as it moves.
    job1 = loop.start()
    assert await loop.announcer.tick() == 1
    [post] = loop.slack.calls_to("chat.postMessage")
    assert (post["channel"] == CHANNEL and "step 3/12" in _text(post) and "▓" in _text(post)
            and "loss 2.500" in _text(post))
    assert await loop.announcer.tick() == 0  # nothing new: no edit
    with loop.store.session() as s:
        set_progress(s, job1, JobProgress(step=9, total=12, loss=1.25, eval_loss=1.5, tokens_per_s=40.0, eta_s=8))
    assert await loop.announcer.tick() == 1
    assert "step 9/12" in _text(loop.job_message(job1)) and "eval loss 1.500" in _text(loop.job_message(job1))
    first = loop.run(job1, seed=1)

    # It ends: the same message becomes the approval request, with the loss curve, the table and samples.
    assert await loop.announcer.tick() == 1
    assert len(loop.slack.calls_to("chat.postMessage")) == 1
    message = loop.job_message(job1)
    text = _text(message)
    assert first in text and "key fact" in text and "base model" in text and "*Q:*" in text
    # What the bot would send, right / wrong / don't know, and off-store refusals, for base and new; and samples
    # of what a customer would get, never the adapter asked alone.
    assert "what the bot sends" in text and "off-store refused" in text and "*the bot would send:*" in text
    assert "*new:*" not in text
    [image] = [b for b in message["blocks"] if b["type"] == "image"]
    assert loop.slack.uploads[image["slack_file"]["id"]].startswith(b"\x89PNG")
    assert await loop.announcer.tick() == 0  # final: never posted again

    # Someone who is not an admin presses Approve: nothing changes, they are told why.
    await loop.click(OTHER, approval.APPROVE, message)
    await loop.slack.wait_for(lambda: any("Only admins" in r.get("text", "") for r in loop.slack.responses))
    assert loop.deployed() is None and loop.models() == set()
    assert any(b["type"] == "actions" for b in loop.job_message(job1)["blocks"])

    # The admin approves: loaded under its own name, smoke-tested, deployed; the message says who and when.
    await loop.click(ADMIN, approval.APPROVE, message)
    done = await loop.slack.wait_for(lambda: "Approved by" in _text(loop.job_message(job1)), timeout=30)
    assert done
    final = _text(loop.job_message(job1))
    assert "answers from the server matched the evaluation's" in final
    assert f"<@{ADMIN}>" in final and "UTC" in final and not any(
        b["type"] == "actions" for b in loop.job_message(job1)["blocks"])
    assert loop.deployed() == first and loop.models() == {first}
    assert first in await loop.ask("How long does the free trial last?", "100.1")

    # A second version, approved: it answers; the first stays loaded for a rollback.
    second = loop.train(seed=2)
    await loop.announcer.tick()
    message = loop.job_message(loop.job_id)
    await loop.click(ADMIN, approval.APPROVE, message)
    await loop.slack.wait_for(lambda: "Approved by" in _text(loop.job_message(loop.job_id)), timeout=30)
    assert loop.deployed() == second and loop.models() == {first, second}
    assert second in await loop.ask("Can I export my invoices?", "100.2")

    # /ft rollback: the previous version answers the next question.
    status, _ = await loop.send.command("rollback", ADMIN)
    assert status == 200
    await loop.slack.wait_for(lambda: any("Rolled back" in r.get("text", "") for r in loop.slack.responses), timeout=30)
    assert loop.deployed() == first
    assert first in await loop.ask("How do I reset my password?", "100.3")


@pytest.mark.slow
async def test_a_corrupted_adapter_fails_the_deploy_and_the_old_version_keeps_serving(loop):
    first = loop.train(seed=1)
    await loop.announcer.tick()
    await loop.click(ADMIN, approval.APPROVE, loop.job_message(loop.job_id))
    await loop.slack.wait_for(lambda: "Approved by" in _text(loop.job_message(loop.job_id)), timeout=30)

    second = loop.train(seed=2)
    with loop.store.session() as s:
        path = Path(s.exec(select(ModelVersion).where(ModelVersion.name == second)).one().adapter_path)
    (path / "adapter_model.safetensors").write_bytes(b"not a safetensors file" * 50)
    await loop.announcer.tick()
    await loop.click(ADMIN, approval.APPROVE, loop.job_message(loop.job_id))
    text = await loop.slack.wait_for(lambda: "deploy failed" in _text(loop.job_message(loop.job_id)), timeout=30)
    assert text
    final = _text(loop.job_message(loop.job_id))
    assert "could not load" in final and f"{first} is still deployed" in final
    assert loop.deployed() == first and loop.models() == {first}
    with loop.store.session() as s:
        assert s.exec(select(ModelVersion).where(ModelVersion.name == second)).one().status == \
            VersionStatus.AWAITING_APPROVAL
    assert first in await loop.ask("How long does the free trial last?", "200.1")


@pytest.mark.slow
async def test_reject_and_a_failed_job_are_said_in_the_channel(loop):
    name = loop.train(seed=3)
    await loop.announcer.tick()
    await loop.click(ADMIN, approval.REJECT, loop.job_message(loop.job_id))
    await loop.slack.wait_for(lambda: "Rejected by" in _text(loop.job_message(loop.job_id)), timeout=10)
    with loop.store.session() as s:
        v = s.exec(select(ModelVersion).where(ModelVersion.name == name)).one()
    assert (v.status, v.decided_by) == (VersionStatus.REJECTED, ADMIN) and loop.models() == set()

    with loop.store.session() as s:
        job_id = enqueue(s, {}, "scheduler").id
    with loop.store.session() as s:
        claim(s, "w1", 60, job_id=job_id)
        finish(s, job_id, "w1", JobStatus.FAILED, error="Traceback …\nValueError: no training examples left")
    await loop.announcer.tick()
    assert "failed: ValueError: no training examples left" in _text(loop.job_message(job_id))


@pytest.mark.slow
async def test_smoke_test_refuses_an_adapter_that_answers_unlike_its_evaluation(loop):
    """Train/serve parity: a version whose recorded evaluation answers differ from what it serves is not deployed."""
    name = loop.train(seed=4)
    with loop.store.session() as s:
        v = s.exec(select(ModelVersion).where(ModelVersion.name == name)).one()
        wrong = "Something it never said at all, not even close"
        recorded = VersionMetrics.from_json(v.metrics)
        recorded.samples = [x.model_copy(update={"new": wrong, "new_with_retrieval": wrong}) for x in recorded.samples]
        v.metrics = recorded.to_json()
    await loop.announcer.tick()
    await loop.click(ADMIN, approval.APPROVE, loop.job_message(loop.job_id))
    await loop.slack.wait_for(lambda: "deploy failed" in _text(loop.job_message(loop.job_id)), timeout=30)
    assert "smoke test" in _text(loop.job_message(loop.job_id))
    assert loop.deployed() is None and loop.models() == set()  # unloaded again


def _request_text(live: dict | None) -> tuple[dict, str]:
    """The approval request of a version whose evaluation carries these live figures (None: written before them)."""
    metrics = VersionMetrics(deployed_name="ft-1-v1").to_json()
    if live is None:
        del metrics["live"]
    else:
        metrics["live"] = live
    job = TrainingJob(id=2, status=JobStatus.SUCCEEDED, requested_by=CURATOR)
    version = ModelVersion(name="ft-2-v2", job_id=2, metrics=metrics, status=VersionStatus.AWAITING_APPROVAL)
    message = approval.approval_request(job, version)
    return message, _text(message)


def test_the_approval_request_shows_both_versions_on_live_questions():
    long_question = "Why does <@U999> see QM-E42 & what now? " + "really " * 200
    live = {"n": 7, "n_trained": 2, "deployed_name": "ft-1-v1",
            "deployed": {"agrees": 2, "other": 3, "declined": 2, "unchecked": 0},
            "new": {"agrees": 5, "other": 0, "declined": 1, "unchecked": 1},
            "examples": [{"question": long_question, "team": "QM-E42: press Reconnect.", "deployed": "Call your bank.",
                          "new": "QM-E42 means the link expired: press Reconnect.", "deployed_outcome": "other",
                          "new_outcome": "agrees"}] * 5}
    message, text = _request_text(live)
    lines = [line.strip("`") for line in text.splitlines()]
    rows = lines[lines.index(next(line for line in lines if line.startswith("live questions"))) + 1:][:2]
    assert rows[0].startswith("deployed ft-1-v1") and rows[0].split()[2:] == ["2/7", "3/7", "2/7", "0"]
    assert rows[1].startswith("new") and rows[1].split()[1:] == ["5/7", "0/7", "1/7", "1"]
    assert "7 newest question(s) the team answered" in text and "trained on the team's answer to 2" in text
    # A few questions side by side, escaped and clipped within Slack's limits.
    shown = [b for b in message["blocks"] if b["type"] == "section" and b["text"]["text"].startswith("*Q:*")]
    assert len(shown) == 3
    assert "&lt;@U999&gt;" in shown[0]["text"]["text"] and "<@U999>" not in shown[0]["text"]["text"]
    assert "*new* (agrees): QM-E42 means" in shown[0]["text"]["text"]
    assert "*deployed ft-1-v1* (states something else): Call your bank." in shown[0]["text"]["text"]
    assert len(message["blocks"]) <= 50 and all(len(b["text"]["text"]) <= 3000 for b in message["blocks"]
                                                if b["type"] == "section")


def test_without_live_questions_the_approval_request_says_so():
    for live in (None, {"n": 0}):  # a version evaluated before live evaluation existed, or nobody answered yet
        _, text = _request_text(live)
        assert "no live questions yet" in text
