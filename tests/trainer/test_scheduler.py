"""The scheduler's rule on SQLite and PostgreSQL, and its cron trigger inside a running loop."""

import asyncio

from sqlmodel import select

from core.states import ExampleStatus, JobStatus
from storage.examples import NewExample, add_examples
from storage.models import TrainingJob
from storage.snapshots import create_snapshot
from trainer import scheduler


def _approve(store, n, start=0):
    with store.session() as s:
        add_examples(s, [NewExample(f"k{i}", f"q{i}", f"a{i}", status=ExampleStatus.APPROVED)
                         for i in range(start, start + n)])


def test_enqueues_only_with_enough_new_examples_and_nothing_active(store):
    _approve(store, 4)
    with store.session() as s:
        assert scheduler.maybe_enqueue(s, min_new=5) is None
    _approve(store, 1, start=4)
    with store.session() as s:
        job = scheduler.maybe_enqueue(s, min_new=5)
        assert job is not None and job.requested_by == "scheduler"
        assert scheduler.maybe_enqueue(s, min_new=5) is None  # one is queued already
        job.status = JobStatus.SUCCEEDED
        create_snapshot(s, 15)
    with store.session() as s:
        assert scheduler.maybe_enqueue(s, min_new=5) is None  # nothing new since the snapshot


async def run_now(store, sched, job_id: str, done) -> None:
    """Fire the scheduler's job now, inside the running loop, and wait (5 s at most) until done(session)."""
    job = sched.get_job(job_id)
    job.modify(next_run_time=job.next_run_time.__class__.now(job.next_run_time.tzinfo))
    for _ in range(100):
        with store.session() as s:
            if done(s):
                return
        await asyncio.sleep(0.05)


async def test_cron_trigger_fires_in_the_loop(store):
    _approve(store, 3)
    sched = scheduler.start(store, "* * * * *", min_new=1)
    try:
        await run_now(store, sched, "ftbot-train", lambda s: s.exec(select(TrainingJob)).first())
        with store.session() as s:
            assert [j.requested_by for j in s.exec(select(TrainingJob))] == ["scheduler"]
    finally:
        sched.shutdown(wait=False)


async def test_retention_deletes_old_questions_and_feedback_that_never_became_an_approved_pair(store):
    """FT_RETENTION_DAYS on the scheduler: what is older and never became an approved pair goes; the rest stays."""
    from datetime import timedelta

    from storage.feedback import answer, correct, record
    from storage.models import Draft, Example, Feedback, utcnow

    old = utcnow() - timedelta(days=40)
    with store.session() as s:
        asked = [record(s, question=f"old question {n}", answer="", user="UCUST", version_name=None, source={},
                        declined=True) for n in range(4)]
        answer(s, asked[1].id, "The answer a curator gave.", "UCURATOR")  # became an approved pair: kept
        correct(s, asked[2].id, "A correction nobody approved.", "UCUST")  # a candidate, never approved: goes
        recent = record(s, question="a recent question", answer="", user="UCUST", version_name=None, source={})
        s.add(Draft(mode="draft", channel_id="C1", question_ts="1.1", asker="UCUST", question="old draft question",
                    updated_at=old, asked_at=old))
        rejected = add_examples(s, [NewExample("k-old", "old rejected q", "old rejected a",
                                               status=ExampleStatus.REJECTED)])[0][1]
        s.flush()
        for fb in asked:
            s.get(Feedback, fb.id).created_at = old
        rejected.updated_at = old
        recent_id = recent.id
    sched = scheduler.start(store, "0 2 * * *", min_new=1, retention_days=30)
    try:
        await run_now(store, sched, "ftbot-retention", lambda s: s.exec(select(Draft)).first() is None)
        with store.session() as s:
            kept = {fb.question for fb in s.exec(select(Feedback))}
            assert kept == {"old question 1", "a recent question"} and s.get(Feedback, recent_id)
            assert "old rejected q" not in {ex.question for ex in s.exec(select(Example))}
            assert s.exec(select(Example).where(Example.question == "old question 1")).one().status == "approved"
    finally:
        sched.shutdown(wait=False)
