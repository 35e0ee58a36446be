"""`ft worker`: claim queued jobs, run each in a child process under a heartbeat lease.

`Worker.run_one` is the one way a job runs: `ft worker` calls it for each job in the queue, `ft train --inline`
for the job it queued. A child process per job (`child_main`, which calls trainer.job.run_training): GPU memory
is freed when it exits, and a crash cannot take the worker down. The child reports its end on a pipe as a
typed record (Trained, Stopped, Failed). The child dies with the worker (a parent watchdog), so a SIGKILLed
worker leaves only an expiring lease; another worker then requeues the job and resumes it from its last
checkpoint.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlmodel import Session

from core.contract import JobProgress
from core.states import JobOutcome, JobStatus
from storage import Store, open_store
from storage.db import is_transient, one_line
from storage.queue import claim, finish, heartbeat, release, requeue_expired, set_progress
from trainer import metrics
from trainer.config import TrainConfig

log = logging.getLogger("ftbot.worker")


@dataclass(kw_only=True)
class WorkerConfig:
    """Built from Settings by ftbot.wiring.worker_config. Plain values (a dataclass of dataclasses): the job's
    part is pickled into the job's process."""

    data_dir: Path  # adapters, checkpoints and snapshots go here
    models_dir: Path  # where SmolLM2 is prepared when train.base_model is empty
    train: TrainConfig  # what every job starts from, before its own parameters
    val_percent: int  # the share of examples a job's snapshot holds out for validation
    lease_s: float  # a job whose worker stays silent this long goes back to the queue
    heartbeat_s: float
    poll_s: float = 5.0
    progress_every_s: float = 3.0  # progress rows are written at most this often
    stop_grace_s: float = 60.0  # how long a cancelled job may take to stop before it is killed
    # Runs here before each job's process starts: `ft worker` brings the retrieval index up to date with
    # it, so the job's snapshot finds its examples' vectors (trainer.context). Errors are logged, not fatal.
    before_job: Callable[[Store], Any] | None = None


@dataclass(frozen=True)
class JobRequest:
    """What a job's process is given (pickled into it): where the store is, the job, and the worker's settings."""

    db_url: str
    busy_timeout_s: float
    job_id: int
    data_dir: Path
    models_dir: Path
    train: TrainConfig
    val_percent: int
    progress_every_s: float
    parent_pid: int  # the worker's: the job's process ends itself when the worker is gone


# What a job's process reports on its pipe as it ends.
@dataclass(frozen=True)
class Trained:
    version_id: int


@dataclass(frozen=True)
class Stopped:
    """Asked to stop (a cancel, or the worker shutting down); a checkpoint is kept for resuming."""


@dataclass(frozen=True)
class Failed:
    reason: str  # one line


class Worker:
    def __init__(self, store: Store, config: WorkerConfig, name: str | None = None):
        self.store = store
        self.config = config
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.last_error: str | None = None  # the one-line reason the last job failed or was lost
        self._cancel = False

    def run(self, once: bool = False) -> int:
        """Work until stopped (or, with once, until the queue is empty). Returns jobs run. A busy or unreachable
        database costs a poll interval, not the worker."""
        ran = 0
        while not self.stopping.is_set():
            try:
                outcome = self.run_one()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("the database did not answer (%s); trying again in %.0f s", one_line(exc),
                            self.config.poll_s)
                self.stopping.wait(self.config.poll_s)
                continue
            if outcome is None:
                if once:
                    break
                self.stopping.wait(self.config.poll_s)
                continue
            ran += 1
        return ran

    def run_one(self, job_id: int | None = None) -> str | None:
        """Claim a job and run it to its end: the queued job `job_id` (`ft train --inline` runs its own), else the
        next in the queue, once jobs whose worker went silent are back in it. Returns what run_job returns; None
        when there was no job to claim. Only claiming raises (the database's errors)."""
        if job_id is None:
            with self.store.session() as s:
                for expired, status in requeue_expired(s):
                    log.warning("job %s: its worker went silent; now %s", expired, status)
        with self.store.session() as s:
            job = claim(s, self.name, self.config.lease_s, job_id=job_id)
        if job is None:
            return None
        started = time.monotonic()
        outcome = self.run_job(job.id, job.attempts)
        metrics.observe_job(self.store, job.id, outcome, time.monotonic() - started)
        return outcome

    def run_job(self, job_id: int, attempt: int) -> str:
        """Run a job this worker claimed, to its end. Returns how it ended (JobOutcome: its status, or LOST when the
        lease could not be kept); never raises: any failure is a failed job, its one-line reason in self.last_error."""
        self.last_error = None
        try:
            return self._run_job(job_id, attempt)
        except Exception as exc:
            self.last_error = one_line(exc)
            log.error("job %s failed: %s", job_id, self.last_error)
            log.debug("job %s", job_id, exc_info=True)
            try:
                self.store.patiently(lambda s: finish(s, job_id, self.name, JobStatus.FAILED, error=self.last_error),
                                     within_s=self.config.lease_s)
            except Exception as again:  # noqa: BLE001  (the failure is logged; the lease brings the job back)
                log.error("job %s: recording the failure failed too (%s); its lease expires and another attempt "
                          "follows", job_id, one_line(again))
            return JobStatus.FAILED

    def _run_job(self, job_id: int, attempt: int) -> str:
        log.info("job %s: claimed by %s (attempt %s)", job_id, self.name, attempt)
        if self.config.before_job is not None:
            try:
                self.config.before_job(self.store)
            except Exception as exc:  # noqa: BLE001  (training without retrieved context beats not training)
                log.error("job %s: preparing the retrieval index failed (%s); training without it", job_id,
                          one_line(exc))
        ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited CUDA or thread state
        parent_end, child_end = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        request = JobRequest(db_url=self.store.url, busy_timeout_s=self.store.busy_timeout_s, job_id=job_id,
                             data_dir=self.config.data_dir, models_dir=self.config.models_dir, train=self.config.train,
                             val_percent=self.config.val_percent, progress_every_s=self.config.progress_every_s,
                             parent_pid=os.getpid())
        child = ctx.Process(target=child_main, name=f"ftbot-job-{job_id}", daemon=True,
                            args=(request, stop, child_end))
        child.start()
        child_end.close()
        try:
            outcome = self._watch(job_id, child, stop)
        finally:
            if child.is_alive():  # whatever went wrong here, no job runs on unwatched
                child.kill()
                child.join()
        if outcome is not None:
            return outcome
        cancel = self._cancel
        report = (parent_end.recv() if parent_end.poll()
                  else Failed(f"the job process exited with code {child.exitcode}"))
        error = version = None
        match report:
            case Trained(version_id=version):
                status = JobStatus.SUCCEEDED
            case Stopped():
                # Cancelled by a person, or this worker is shutting down: then another worker resumes it.
                status = JobStatus.CANCELLED if cancel else JobStatus.QUEUED
            case Failed(reason=error):
                status = JobStatus.FAILED
                self.last_error = error

        def record(s: Session) -> None:
            if status == JobStatus.QUEUED:
                release(s, job_id, self.name)
            else:
                finish(s, job_id, self.name, status, error=error, version_id=version)

        try:
            self.store.patiently(record, within_s=self.config.lease_s)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Not failed: the lease expires, and the next attempt finds the version this one stored, if any.
            self.last_error = (f"the job ended {status}, but the database did not take the news ({one_line(exc)}); "
                               "it goes back to the queue")
            log.error("job %s: %s", job_id, self.last_error)
            return JobOutcome.LOST
        log.info("job %s: %s%s", job_id, status, f" ({error})" if error else "")
        return status

    def _watch(self, job_id: int, child: Any, stop: Any) -> str | None:
        """Keep the lease while the child runs; pass on a cancel. None when the child ended, LOST when it was
        stopped because the lease could not be kept. A heartbeat that fails on a busy database is tried again
        while the lease holds; each try waits no longer than leaves time to stop the child before it expires."""
        self._cancel, cancel_at = False, None
        lease_s, beat_s = self.config.lease_s, self.config.heartbeat_s
        last_beat = time.monotonic()
        while child.is_alive():
            child.join(beat_s)
            if not child.is_alive():
                break
            wait_s = last_beat + lease_s - beat_s - time.monotonic()
            if wait_s <= 0:
                self.last_error = (f"no heartbeat reached the database for {time.monotonic() - last_beat:.0f} s, "
                                   "so the job was stopped before its lease ran out; it goes back to the queue")
                log.error("job %s: %s", job_id, self.last_error)
                return JobOutcome.LOST
            beat_at = time.monotonic()
            try:
                with self.store.session_waiting(min(wait_s, self.store.busy_timeout_s)) as s:
                    ours, cancel = heartbeat(s, job_id, self.name, lease_s)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("job %s: heartbeat failed (%s); trying again", job_id, one_line(exc))
                continue
            last_beat = beat_at
            self._cancel = cancel
            if not ours:
                self.last_error = "another worker took the job over (its lease had expired)"
                log.error("job %s: lease lost; stopping the child", job_id)
                return JobOutcome.LOST
            if (cancel or self.stopping.is_set()) and cancel_at is None:
                stop.set()
                cancel_at = time.monotonic()
            if cancel_at and time.monotonic() - cancel_at > self.config.stop_grace_s:
                child.kill()
        return None


def child_main(request: JobRequest, stop, conn) -> None:
    """The job process: trainer.job.run_training (train, evaluate, record the version); its end goes on `conn` as
    Trained, Stopped or Failed."""
    threading.Thread(target=_die_with_parent, args=(request.parent_pid,), daemon=True).start()
    store = open_store(request.db_url, upgrade=False, busy_timeout_s=request.busy_timeout_s)
    job_id, progress_every_s = request.job_id, request.progress_every_s
    last = [0.0]

    def on_progress(progress: JobProgress) -> None:
        now = time.monotonic()
        if now - last[0] >= progress_every_s or progress.step == progress.total:
            last[0] = now
            try:
                with store.session() as s:
                    set_progress(s, job_id, progress)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("job %s: progress not recorded (%s)", job_id, one_line(exc))

    try:
        from trainer.job import TrainingStopped, run_training

        version_id = run_training(store, job_id, request.train, request.data_dir, models_dir=request.models_dir,
                                  val_percent=request.val_percent, on_progress=on_progress,
                                  should_stop=stop.is_set)
        conn.send(Trained(version_id))
    except TrainingStopped:
        conn.send(Stopped())
    except BaseException as exc:  # report anything: the worker records it on the job
        log.debug("job %s failed", job_id, exc_info=True)  # the traceback with FT_LOG_LEVEL=DEBUG
        conn.send(Failed(one_line(exc)))
    finally:
        store.close()


def _die_with_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(70)  # the worker is gone; its lease will expire and another worker resumes
        time.sleep(0.5)
