"""`ft worker` for real: a job trains in a child process; a worker killed mid-job is replaced by another
that resumes the job from its checkpoint and finishes it (SQLite and PostgreSQL)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import select

from core.states import ExampleStatus, JobStatus
from ftbot import wiring
from ftbot.settings import Settings
from storage.examples import NewExample, add_examples
from storage.jobs import enqueue
from storage.models import ModelVersion, TrainingJob
from tests.trainer.conftest import ROWS
from trainer.worker import Worker

FT = str(Path(sys.executable).parent / "ft")
pytestmark = pytest.mark.slow  # jobs train in child processes: 10-75 s each on the 2-core machine


def _approved(store, copies=3):
    with store.session() as s:
        add_examples(s, [NewExample(f"k{c}-{i}", f"{q} ({c})", a, status=ExampleStatus.APPROVED)
                         for c in range(copies) for i, (q, a) in enumerate(ROWS)])


def _job(store, job_id):
    with store.session() as s:
        return s.get(TrainingJob, job_id)


def test_a_killed_worker_leaves_a_job_that_another_resumes(store, tiny_base, tmp_path):
    _approved(store)
    with store.session() as s:
        job_id = enqueue(s, {"epochs": 12, "lr": 0.005, "rank": 8}, "UCURATOR").id
    data_dir = tmp_path / "data"
    env = {**os.environ, "FT_DATABASE_URL": store.url, "FT_DATA_DIR": str(data_dir), "FT_BASE_MODEL": str(tiny_base),
           "FT_WORKER_LEASE_S": "3", "FT_WORKER_HEARTBEAT_S": "0.5", "FT_LOG_LEVEL": "WARNING"}
    first = subprocess.Popen([FT, "worker"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(data_dir.glob("adapters/*/checkpoints/checkpoint-*")):
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            assert first.poll() is None, "the worker exited"
            time.sleep(0.2)
        assert _job(store, job_id).status == JobStatus.RUNNING
    finally:
        os.kill(first.pid, signal.SIGKILL)  # no goodbye: only its lease will tell
        first.wait()

    time.sleep(3.2)  # the lease runs out
    settings = Settings(data_dir=data_dir, base_model=str(tiny_base), worker_lease_s=3, worker_heartbeat_s=0.5)
    second = Worker(store, wiring.worker_config(settings, poll_s=0.2), name="second")
    assert second.run(once=True) == 1
    job = _job(store, job_id)
    assert (job.status, job.attempts, job.lease_owner, job.error) == (JobStatus.SUCCEEDED, 2, "second", None)
    with store.session() as s:
        version = s.exec(select(ModelVersion).where(ModelVersion.job_id == job_id)).one()
    assert version.id == job.version_id and version.status == "awaiting_approval"
    assert version.metrics["train"]["resumed_from"], "the second worker started over instead of resuming"
    assert (Path(version.adapter_path) / "adapter_model.safetensors").is_file()
    assert job.progress["total"] and job.progress["step"] == job.progress["total"]


def test_cancelling_a_running_job_stops_it(store, tiny_base, tmp_path):
    _approved(store)
    with store.session() as s:
        job_id = enqueue(s, {"epochs": 50, "lr": 0.005, "rank": 8}, "UCURATOR").id
    settings = Settings(data_dir=tmp_path, base_model=str(tiny_base), worker_lease_s=5, worker_heartbeat_s=0.3)
    worker = Worker(store, wiring.worker_config(settings, poll_s=0.2), name="w")
    import threading

    from storage.jobs import cancel

    def cancel_when_training() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (_job(store, job_id).progress or {}).get("step"):
            time.sleep(0.2)
        with store.session() as s:
            cancel(s, job_id)

    threading.Thread(target=cancel_when_training, daemon=True).start()
    assert worker.run(once=True) == 1
    job = _job(store, job_id)
    assert job.status == JobStatus.CANCELLED and job.version_id is None


def test_a_failing_job_is_failed_with_a_one_line_reason_and_the_worker_goes_on(store, tiny_base, tmp_path):
    with store.session() as s:
        first = enqueue(s, {"epochs": 1, "warp_speed": 9}, "UCURATOR").id  # a setting no trainer knows
        second = enqueue(s, {"epochs": 1}, "UCURATOR").id  # nothing approved: nothing to train on
    settings = Settings(data_dir=tmp_path, base_model=str(tiny_base), retrieval=False, worker_lease_s=5,
                        worker_heartbeat_s=0.3)
    worker = Worker(store, wiring.worker_config(settings, poll_s=0.2), name="w")
    assert worker.run(once=True) == 2
    one, two = _job(store, first), _job(store, second)
    assert (one.status, two.status) == (JobStatus.FAILED, JobStatus.FAILED)
    assert one.error == "ValueError: unknown training settings: ['warp_speed']"
    assert two.error.startswith("ValueError: no training examples left") and "\n" not in two.error
    assert worker.last_error == two.error
