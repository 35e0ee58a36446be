"""Prometheus metrics of `ft worker` (served by `ft worker --metrics-port N` on GET /metrics).

The worker has no web server of its own, so prometheus_client's exposition thread serves them. Its
own registry, as the bot's (bot/metrics.py): tests and several workers in one process stay apart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger("ftbot.worker")


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        # outcome: succeeded | failed | cancelled | queued (handed back on shutdown) | lost (lease taken over)
        self.jobs = Counter("ftbot_worker_jobs_total", "Training jobs this worker ran, by outcome", ["outcome"],
                            registry=self.registry)
        self.job_seconds = Histogram("ftbot_worker_job_seconds", "Wall time of a training job, claim to finish",
                                     registry=self.registry,
                                     buckets=(30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800))
        self.tokens_per_s = Gauge("ftbot_worker_last_tokens_per_second",
                                  "Training throughput of the last job that reported it", registry=self.registry)
        self.last_finished = Gauge("ftbot_worker_last_job_finished_timestamp_seconds",
                                   "When the last job ended (alert when it grows old while jobs queue)",
                                   registry=self.registry)

    def job_finished(self, outcome: str, seconds: float, tokens_per_s: float | None = None) -> None:
        self.jobs.labels(outcome=str(outcome)).inc()
        self.job_seconds.observe(seconds)
        if tokens_per_s:
            self.tokens_per_s.set(tokens_per_s)
        self.last_finished.set(time.time())


METRICS = WorkerMetrics()  # the process's worker metrics: what `ft worker --metrics-port` serves


def observe_job(store: Any, job_id: int, outcome: str, seconds: float, metrics: WorkerMetrics | None = None) -> None:
    """Record a finished job; its throughput comes from the job's last progress row. Never raises:
    metrics must not fail a job that trained."""
    try:
        from storage.models import TrainingJob

        with store.session() as s:
            job = s.get(TrainingJob, job_id)
            tokens_per_s = (job.progress or {}).get("tokens_per_s") if job is not None else None
        (metrics or METRICS).job_finished(outcome, seconds, tokens_per_s)
    except Exception:
        log.exception("job %s: recording metrics failed", job_id)


def serve(port: int, addr: str = "0.0.0.0", metrics: WorkerMetrics | None = None) -> Any:
    """GET /metrics on this port, from a daemon thread (dies with the worker). Returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=addr, registry=(metrics or METRICS).registry)
