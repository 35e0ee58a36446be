"""The worker's Prometheus metrics: a finished job counts by outcome, its time and throughput are kept,
and `--metrics-port` serves them. The job itself is a stand-in: training is tested in test_worker.py."""

import socket
import urllib.request

from core.contract import JobProgress
from core.states import JobStatus
from ftbot import wiring
from ftbot.settings import Settings
from storage.jobs import enqueue
from storage.queue import finish, set_progress
from trainer import metrics
from trainer.worker import Worker


class QuickWorker(Worker):
    """Runs no child process: reports progress and finishes, as a job that trained would."""

    def run_job(self, job_id: int, attempt: int) -> str:
        with self.store.session() as s:
            set_progress(s, job_id, JobProgress(step=4, total=4, loss=1.0, tokens_per_s=143.5))
            finish(s, job_id, self.name, JobStatus.SUCCEEDED)
        return JobStatus.SUCCEEDED


def test_a_finished_job_updates_the_worker_metrics(store, tmp_path, monkeypatch):
    fresh = metrics.WorkerMetrics()
    monkeypatch.setattr(metrics, "METRICS", fresh)
    with store.session() as s:
        enqueue(s, {}, "UCURATOR")
        enqueue(s, {}, "UCURATOR")
    worker = QuickWorker(store, wiring.worker_config(Settings(data_dir=tmp_path), poll_s=0.05), name="w")
    assert worker.run(once=True) == 2

    value = fresh.registry.get_sample_value
    assert value("ftbot_worker_jobs_total", {"outcome": "succeeded"}) == 2
    assert value("ftbot_worker_job_seconds_count") == 2
    assert value("ftbot_worker_last_tokens_per_second") == 143.5
    assert value("ftbot_worker_last_job_finished_timestamp_seconds") > 0


def test_outcomes_are_counted_apart_and_served_over_http():
    fresh = metrics.WorkerMetrics()
    fresh.job_finished("failed", 12.0)
    fresh.job_finished("lost", 3.0, tokens_per_s=None)  # no throughput: the gauge keeps its last value
    value = fresh.registry.get_sample_value
    assert value("ftbot_worker_jobs_total", {"outcome": "failed"}) == 1
    assert value("ftbot_worker_jobs_total", {"outcome": "lost"}) == 1
    assert value("ftbot_worker_last_tokens_per_second") == 0

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server, thread = metrics.serve(port, addr="127.0.0.1", metrics=fresh)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'ftbot_worker_jobs_total{outcome="failed"} 1.0' in body
    assert "ftbot_worker_job_seconds_bucket" in body
