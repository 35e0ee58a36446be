"""The job queue on SQLite and PostgreSQL: atomic claims, leases, requeue after a dead worker."""

import threading
import time

from sqlalchemy import update
from sqlmodel import select

from core.states import ExampleStatus, JobStatus
from storage.examples import NewExample, add_examples
from storage.jobs import cancel, enqueue
from storage.models import TrainingJob
from storage.queue import approved_since_last_snapshot, claim, finish, heartbeat, requeue_expired
from storage.snapshots import create_snapshot


def test_racing_workers_never_claim_the_same_job(store):
    with store.session() as s:
        for _ in range(30):
            enqueue(s, {}, "U1")
    claimed: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        mine = claimed.setdefault(name, [])
        while True:
            with store.session() as s:
                job = claim(s, name, lease_s=60)
            if job is None:
                return
            mine.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [j for ids in claimed.values() for j in ids]
    assert sorted(every) == list(range(1, 31))  # each job exactly once
    with store.session() as s:
        owners = {j.id: j.lease_owner for j in s.exec(select(TrainingJob))}
    assert all(owners[j] == name for name, ids in claimed.items() for j in ids)


def test_lease_heartbeat_finish_and_requeue(store):
    with store.session() as s:
        job_id = enqueue(s, {"epochs": 1}, "U1").id
    with store.session() as s:
        job = claim(s, "w1", lease_s=60)
        assert (job.id, job.status, job.attempts) == (job_id, JobStatus.RUNNING, 1)
    with store.session() as s:
        assert heartbeat(s, job_id, "w1", 60) == (True, False)
        assert heartbeat(s, job_id, "w2", 60) == (False, False)  # not w2's
    # w1 dies: its lease runs out and the job goes back to the queue.
    with store.session() as s:
        s.execute(update(TrainingJob).values(lease_expires_at=TrainingJob.created_at))
        assert requeue_expired(s) == [(job_id, JobStatus.QUEUED)]
    with store.session() as s:
        job = claim(s, "w2", lease_s=60)
        assert job.attempts == 2 and job.lease_owner == "w2"
        assert not finish(s, job_id, "w1", JobStatus.SUCCEEDED)  # the old owner cannot close it
        assert finish(s, job_id, "w2", JobStatus.SUCCEEDED, version_id=None)
    with store.session() as s:
        assert s.get(TrainingJob, job_id).status == JobStatus.SUCCEEDED


def test_a_job_fails_after_its_last_attempt_and_cancel_is_seen(store):
    with store.session() as s:
        job_id = enqueue(s, {}, "U1").id
        s.get(TrainingJob, job_id).max_attempts = 1
    with store.session() as s:
        claim(s, "w1", lease_s=0.01)
    time.sleep(0.05)
    with store.session() as s:
        assert requeue_expired(s) == [(job_id, JobStatus.FAILED)]
        assert "lease expired" in s.get(TrainingJob, job_id).error
    with store.session() as s:
        other = enqueue(s, {}, "U1").id
    with store.session() as s:
        claim(s, "w1", lease_s=60)
        cancel(s, other)
    with store.session() as s:
        assert heartbeat(s, other, "w1", 60) == (True, True)


def test_new_approved_examples_since_the_last_snapshot(store):
    with store.session() as s:
        add_examples(s, [NewExample(f"k{i}", f"q{i}", f"a{i}", status=ExampleStatus.APPROVED) for i in range(5)])
        assert approved_since_last_snapshot(s) == 5
        create_snapshot(s, 15)
        assert approved_since_last_snapshot(s) == 0
        add_examples(s, [NewExample("k9", "q9", "a9", status=ExampleStatus.APPROVED)])
        assert approved_since_last_snapshot(s) == 1
