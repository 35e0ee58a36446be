"""`/ft` through real Bolt over signed HTTP: acks in time, roles, jobs, versions, deploy and rollback."""

import json
from functools import partial

from sqlmodel import select

from core.states import JobStatus, VersionStatus
from storage.examples import NewExample, add_examples
from storage.models import ModelVersion, TrainingJob
from tests.bot.conftest import ADMIN, AGENT, ASKER, CURATOR, OTHER, command_reply, command_text

# Each command's HTTP answer comes inside Slack's 3 s (2.5: the margin a busy 2-core CI machine needs, where the
# suite runs in two processes; work that waited on the model or a training would still take far longer).
_send = partial(command_text, within_s=2.5)
_reply = partial(command_reply, within_s=2.5)


def _all(reply):
    return reply["text"] + "\n" + json.dumps(reply.get("blocks") or [], ensure_ascii=False)


def _jobs(store):
    with store.session() as s:
        return list(s.exec(select(TrainingJob).order_by(TrainingJob.id)))


def _versions(store):
    with store.session() as s:
        return {v.name: v for v in s.exec(select(ModelVersion))}


def _add_versions(store, *names, status=VersionStatus.AWAITING_APPROVAL, **fields):
    with store.session() as s:
        for name in names:
            s.add(ModelVersion(name=name, adapter_path=f"/adapters/{name}", status=status, **fields))


async def test_help_lists_every_sub_command_with_its_role(bot):
    text = await _send(bot, "help", OTHER)
    for sub in ("help", "status", "review", "ask QUESTION", "train", "jobs", "cancel JOB", "versions",
                "deploy VERSION", "rollback"):
        assert f"`/ft {sub}" in text
    lines = {line.split("`")[1].split()[1]: line for line in text.splitlines() if line.startswith("• `/ft")}
    assert "(admins)" in lines["deploy"] and "(admins)" in lines["rollback"]
    assert "(curators and admins)" in lines["train"] and "(curators and admins)" in lines["cancel"]
    assert "(everyone)" in lines["jobs"] and "(everyone)" in lines["ask"]
    for setting in ("epochs=", "qlora=", "preference=", "checkpoint_by=answers"):  # every /ft train setting is told
        assert setting in lines["train"]
    assert await _send(bot, "", OTHER) == text  # `/ft` alone is help too
    assert not bot.slack.responses


async def test_unknown_sub_commands_and_bad_arguments_get_the_usage_text(bot, store):
    cases = {
        "frobnicate now": "don't know the sub-command `frobnicate`",
        "train epochs=abc": "epochs", "train lr=-1": "lr", "train lr=2": "lr", "train rank=7": "rank",
        "train epochs=0": "epochs", "train epochs=51": "epochs", "train colour=blue": "Unknown setting",
        "train epochs": "key=value", "train epochs=2 epochs=3": "twice",
        "cancel": "one job", "cancel soon": "one job", "deploy": "one version", "deploy a b": "one version",
        "jobs please": "takes no arguments", "ask": "question",
    }
    for text, problem in cases.items():
        reply = await _send(bot, text, ADMIN)
        assert problem in reply, (text, reply)
        assert "`/ft deploy VERSION`" in reply and "Traceback" not in reply  # the usage list follows
    assert not _jobs(store) and not bot.slack.responses


async def test_a_curator_queues_a_training_job_with_the_given_settings(bot, store):
    reply = await _reply(bot, "train epochs=2 lr=0.0002 rank=16", CURATOR)
    [job] = _jobs(store)
    assert (job.status, job.requested_by, job.params) == (JobStatus.QUEUED, CURATOR,
                                                          {"epochs": 2, "lr": 0.0002, "rank": 16})
    assert f"job *{job.id}*" in reply["text"] and "epochs=2 lr=0.0002 rank=16" in reply["text"]
    await _reply(bot, "train", ADMIN)  # admins may too; no settings means the worker's defaults
    assert [j.params for j in _jobs(store)] == [{"epochs": 2, "lr": 0.0002, "rank": 16}, {}]


async def test_someone_who_is_not_a_curator_cannot_train_or_cancel(bot, store):
    refusal = await _send(bot, "train epochs=2", OTHER)
    assert "Only curators" in refusal and not _jobs(store)
    with store.session() as s:
        s.add(TrainingJob(params={}))
    [job] = _jobs(store)
    assert "Only curators" in await _send(bot, f"cancel {job.id}", AGENT)
    assert _jobs(store)[0].status == JobStatus.QUEUED and not bot.slack.responses


async def test_jobs_lists_recent_jobs_with_status_and_progress(bot, store):
    assert "No training jobs yet" in (await _reply(bot, "jobs", OTHER))["text"]
    with store.session() as s:
        s.add(TrainingJob(status=JobStatus.SUCCEEDED, params={"epochs": 1}, requested_by=CURATOR))
        s.add(TrainingJob(status=JobStatus.RUNNING, params={"rank": 32},
                          progress={"step": 40, "total": 120, "loss": 1.234}))
        s.add(TrainingJob(status=JobStatus.FAILED, error="CUDA out of memory\nstack…"))
    first, second, third = _jobs(store)
    text = (await _reply(bot, "jobs", OTHER))["text"]
    lines = text.splitlines()[1:]
    assert [line.split("*")[1] for line in lines] == [str(third.id), str(second.id), str(first.id)]  # newest first
    assert "failed" in lines[0] and "CUDA out of memory" in lines[0] and "stack" not in lines[0]
    assert "running" in lines[1] and "step 40/120" in lines[1] and "loss 1.23" in lines[1] and "rank=32" in lines[1]
    assert "succeeded" in lines[2] and f"<@{CURATOR}>" in lines[2]


async def test_cancel_stops_a_queued_or_running_job_and_explains_otherwise(bot, store):
    with store.session() as s:
        s.add(TrainingJob())
        s.add(TrainingJob(status=JobStatus.RUNNING))
        s.add(TrainingJob(status=JobStatus.SUCCEEDED))
    queued, running, done = _jobs(store)
    assert "cancelled" in (await _reply(bot, f"cancel {queued.id}", CURATOR))["text"]
    assert "stops at its next step" in (await _reply(bot, f"cancel #{running.id}", ADMIN))["text"]
    assert "already succeeded" in (await _reply(bot, f"cancel {done.id}", CURATOR))["text"]
    assert "no job 999" in (await _reply(bot, "cancel 999", CURATOR))["text"]
    queued, running, done = _jobs(store)
    assert (queued.status, running.status, running.cancel_requested, done.status) == (
        JobStatus.CANCELLED, JobStatus.RUNNING, True, JobStatus.SUCCEEDED)


async def test_versions_and_status(bot, store):
    assert "No model versions yet" in (await _reply(bot, "versions", OTHER))["text"]
    _add_versions(store, "support-v1", status=VersionStatus.DEPLOYED, metrics={"key_fact": 0.4, "rougeL": 0.31})
    _add_versions(store, "support-v2", metrics={"rougeL": 0.5}, below_deployed=True)
    _add_versions(store, "support-v3", status=VersionStatus.REJECTED)
    lines = (await _reply(bot, "versions", OTHER))["text"].splitlines()[1:]
    assert "support-v3" in lines[0] and "rejected" in lines[0]
    assert "support-v2" in lines[1] and "awaiting approval" in lines[1] and "ROUGE-L 50%" in lines[1]
    assert "below the deployed" in lines[1]
    assert "support-v1" in lines[2] and "deployed" in lines[2] and "key fact 40%" in lines[2]

    with store.session() as s:
        s.add(TrainingJob())
    text = (await _reply(bot, "status", OTHER))["text"]
    assert "*support-v1* is deployed" in text and "1 queued" in text and "1 awaiting approval" in text


async def test_someone_who_is_not_an_admin_cannot_deploy_or_roll_back(bot, store):
    _add_versions(store, "support-v1")
    for user in (CURATOR, OTHER):
        assert "Only admins" in await _send(bot, "deploy support-v1", user)
        assert "Only admins" in await _send(bot, "rollback", user)
    assert _versions(store)["support-v1"].status == VersionStatus.AWAITING_APPROVAL
    assert not bot.model.adapters and not bot.slack.responses


async def test_deploy_loads_the_adapter_flips_the_pointer_and_rollback_flips_back(bot, store):
    _add_versions(store, "support-v1", "support-v2", "support-v3")
    reply = await _reply(bot, "deploy support-v1", ADMIN)
    assert "support-v1 is deployed" in reply["text"]
    assert bot.model.adapters == {"support-v1": "/adapters/support-v1"}
    v1 = _versions(store)["support-v1"]
    assert (v1.status, v1.decided_by) == (VersionStatus.DEPLOYED, ADMIN) and v1.deployed_at is not None

    reply = await _reply(bot, "deploy support-v2", ADMIN)
    assert "support-v1 is retired" in reply["text"]
    versions = _versions(store)
    assert (versions["support-v1"].status, versions["support-v2"].status) == (VersionStatus.RETIRED,
                                                                                VersionStatus.DEPLOYED)
    assert set(bot.model.adapters) == {"support-v1", "support-v2"}  # the previous one stays loaded

    await _reply(bot, "deploy support-v3", ADMIN)
    assert set(bot.model.adapters) == {"support-v2", "support-v3"}  # older retired ones are unloaded

    reply = await _reply(bot, "rollback", ADMIN)
    assert "support-v2 is deployed again" in reply["text"]
    versions = _versions(store)
    assert [versions[n].status for n in ("support-v1", "support-v2", "support-v3")] == [
        VersionStatus.RETIRED, VersionStatus.DEPLOYED, VersionStatus.RETIRED]
    assert set(bot.model.adapters) == {"support-v2", "support-v3"}
    assert "*support-v2* is deployed" in (await _reply(bot, "status", OTHER))["text"]

    await _reply(bot, "rollback", ADMIN)  # a rollback of the rollback returns to v3
    assert _versions(store)["support-v3"].status == VersionStatus.DEPLOYED

    # A retired version can be deployed again; one the server still holds ("already loaded") is fine.
    await _reply(bot, "deploy support-v2", ADMIN)
    assert _versions(store)["support-v2"].status == VersionStatus.DEPLOYED


async def test_deploy_explains_what_cannot_be_deployed(bot, store):
    _add_versions(store, "support-v1", status=VersionStatus.DEPLOYED)
    _add_versions(store, "support-v2", status=VersionStatus.REJECTED)
    assert "no version named support-v9" in (await _reply(bot, "deploy support-v9", ADMIN))["text"]
    assert "deployed already" in (await _reply(bot, "deploy support-v1", ADMIN))["text"]
    assert "rejected; only a version awaiting approval" in (await _reply(bot, "deploy support-v2", ADMIN))["text"]
    assert "no earlier version to roll back to" in (await _reply(bot, "rollback", ADMIN))["text"]
    assert _versions(store)["support-v1"].status == VersionStatus.DEPLOYED and not bot.model.adapters


async def test_deploy_with_the_model_server_down_keeps_the_deployed_version(bot, store):
    _add_versions(store, "support-v1", "support-v2")
    await _reply(bot, "deploy support-v1", ADMIN)
    await bot.model.stop()
    reply = await _reply(bot, "deploy support-v2", ADMIN)
    assert "could not load support-v2" in reply["text"] and "unreachable" in reply["text"]
    assert "support-v1 is still deployed" in reply["text"] and "Traceback" not in reply["text"]
    versions = _versions(store)
    assert (versions["support-v1"].status, versions["support-v2"].status) == (
        VersionStatus.DEPLOYED, VersionStatus.AWAITING_APPROVAL)


async def test_review_lists_candidates_for_curators(bot, store):
    with store.session() as s:
        add_examples(s, [NewExample(source_key=f"slack:CSUP:{i}.0", question=f"Question {i}?",
                                    answer=f"Answer {i}.", labelled_by=AGENT) for i in (1, 2)])
    reply = await _reply(bot, "review", CURATOR)
    assert "Question 1?" in _all(reply) and "Question 2?" in _all(reply)
    assert "Only curators" in await _send(bot, "review", OTHER)


async def test_ask_answers_in_the_commands_channel(bot, store):
    assert await _send(bot, "ask how long is the trial?", ASKER) == ""
    [post] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postMessage"))
    assert post["channel"] == "CSUP" and "thread_ts" not in post
    assert "21 days" in post["text"]
    assert bot.model.requests[-1]["messages"][-1]["content"] == "how long is the trial?"
