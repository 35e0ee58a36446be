"""A busy database does not fail a training, and a failure never looks like success (SQLite and PostgreSQL).

Another process holds the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: the job tables locked
EXCLUSIVE, reads still allowed) for longer than the busy timeout while `ft train --inline` runs a job:
- held for a few busy timeouts, well inside the lease: the job finishes, exit 0;
- held past the lease: the job stops with a one-line reason and exit code 1, no traceback, and a worker
  then runs it to the end.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.states import ExampleStatus, JobStatus
from ftbot import wiring
from ftbot.settings import Settings
from storage.examples import NewExample, add_examples
from storage.models import TrainingJob
from tests.trainer.conftest import ROWS
from trainer.worker import Worker

FT = str(Path(sys.executable).parent / "ft")

HOLD = """
import sys, time
url, seconds = sys.argv[1], float(sys.argv[2])
if url.startswith("sqlite"):
    import sqlite3
    conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # SQLite's one write lock: every other writer waits, readers go on
else:
    import sqlalchemy
    conn = sqlalchemy.create_engine(url).connect()
    conn.exec_driver_sql("LOCK TABLE trainingjob, datasetsnapshot, snapshotexample, modelversion "
                         "IN EXCLUSIVE MODE")
print("locked", flush=True)
time.sleep(seconds)
conn.rollback()
"""


def _hold_write_lock(url: str, seconds: float) -> subprocess.Popen:
    """Another process takes the write lock and keeps it `seconds`; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _job(store, job_id: int) -> TrainingJob | None:
    with store.session() as s:
        return s.get(TrainingJob, job_id)


def _train_inline_under_lock(store, tiny_base, tmp_path, *, lease_s: float, hold_s: float):
    with store.session() as s:
        add_examples(s, [NewExample(f"k{i}", q, a, status=ExampleStatus.APPROVED) for i, (q, a) in enumerate(ROWS)])
    env = {**os.environ, "FT_DATABASE_URL": store.url, "FT_DATA_DIR": str(tmp_path / "data"),
           "FT_BASE_MODEL": str(tiny_base), "FT_RETRIEVAL": "false", "FT_DB_BUSY_TIMEOUT_S": "1",
           "FT_WORKER_LEASE_S": str(lease_s), "FT_WORKER_HEARTBEAT_S": "0.3", "OMP_NUM_THREADS": "1"}
    train = subprocess.Popen([FT, "train", "--inline", "--epochs", "2", "--lr", "0.005", "--rank", "8"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (job := _job(store, 1)) is None or job.status != JobStatus.RUNNING:
        assert train.poll() is None and time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    # Now: the job's process is starting and will write its snapshot; the worker beats every 0.3 s.
    holder = _hold_write_lock(store.url, hold_s)
    out, err = train.communicate(timeout=180)
    holder.wait()
    return train.returncode, out + err, _job(store, 1)


@pytest.mark.slow  # `ft train --inline` and its job process: 50-65 s each on the shared 2-core machine
def test_a_job_outlasts_a_lock_held_longer_than_the_busy_timeout(store, tiny_base, tmp_path):
    rc, output, job = _train_inline_under_lock(store, tiny_base, tmp_path, lease_s=20, hold_s=4)
    assert "heartbeat failed (OperationalError: " in output, "the lock never got in the way"
    assert "Traceback" not in output
    assert rc == 0, output
    assert "job 1 succeeded" in output
    assert (job.status, job.error, job.attempts) == (JobStatus.SUCCEEDED, None, 1) and job.version_id


@pytest.mark.slow
def test_a_lock_held_past_the_lease_fails_the_run_with_a_reason_and_a_worker_finishes_the_job(
        store, tiny_base, tmp_path):
    rc, output, job = _train_inline_under_lock(store, tiny_base, tmp_path, lease_s=3, hold_s=8)
    assert "Traceback" not in output
    assert rc == 1, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: job 1 stopped: no heartbeat reached the database for ") and "queue" in last, output
    assert job.status == JobStatus.RUNNING  # the database was busy: only the lease's expiry tells now

    # The worker's next round: the lease has run out, the job goes back to the queue, this worker runs it.
    settings = Settings(data_dir=tmp_path / "data", base_model=str(tiny_base), retrieval=False,
                        worker_lease_s=3, worker_heartbeat_s=0.3)
    worker = Worker(store, wiring.worker_config(settings, poll_s=0.2), name="next")
    assert worker.run(once=True) == 1
    job = _job(store, 1)
    assert (job.status, job.attempts, job.lease_owner) == (JobStatus.SUCCEEDED, 2, "next") and job.version_id


def test_a_write_waits_out_a_lock_within_its_patience_and_fails_after_it(db_url):
    from sqlalchemy.exc import OperationalError

    from storage import open_store
    from storage.jobs import enqueue
    from storage.queue import heartbeat

    store = open_store(db_url, busy_timeout_s=0.2)
    try:
        with store.session() as s:
            job_id = enqueue(s, {}, "UCURATOR").id
        holder = _hold_write_lock(store.url, 1.5)
        started = time.monotonic()
        with pytest.raises(OperationalError):  # one try: the busy timeout, then the database's error
            with store.session_waiting(0.1) as s:
                heartbeat(s, job_id, "w", 60)
        with pytest.raises(OperationalError):
            store.patiently(lambda s: enqueue(s, {}, "UCURATOR"), within_s=0.3)
        assert time.monotonic() - started < 1.5
        second = store.patiently(lambda s: enqueue(s, {}, "UCURATOR").id, within_s=10)  # tried until the lock goes
        assert time.monotonic() - started >= 1.0 and second > job_id
        holder.wait()
        with store.session() as s:  # the pooled connection has the store's own timeout back
            assert s.get(TrainingJob, second) is not None
    finally:
        store.close()


def test_only_errors_that_waiting_cures_are_tried_again(store):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from storage.db import is_transient

    started = time.monotonic()
    with pytest.raises(DBAPIError) as err:  # a missing table does not appear by waiting
        store.patiently(lambda s: s.execute(text("SELECT * FROM no_such_table")), within_s=30)
    assert not is_transient(err.value) and time.monotonic() - started < 5
