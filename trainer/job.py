"""One training job as the worker's child process runs it: the job's parameters over the worker's config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from storage import Store
from storage.models import TrainingJob
from trainer.config import TrainConfig
from trainer.train import ProgressFn
from trainer.train import TrainingStopped as JobStopped

__all__ = ["JobStopped", "execute"]


def execute(store: Store, job_id: int, data_dir: Path, train: TrainConfig, *, val_percent: int, models_dir: Path,
            on_progress: ProgressFn, should_stop: Callable[[], bool]) -> int:
    """Train, evaluate and store the new version; returns its id. Raises JobStopped when asked to stop.

    `train` is what every job of this worker starts from (ftbot.wiring.train_config: FT_BASE_MODEL, the system
    prompt, retrieval); the job's own parameters (storage.jobs.check_params) go over it."""
    from trainer.base_model import resolve_base_model
    from trainer.pipeline import run_training

    with store.session() as s:
        job = s.get(TrainingJob, job_id)
        if job is None:
            raise LookupError(f"no training job {job_id}")
        params = dict(job.params)
    cfg = train.with_overrides(params)
    # Here, not in the worker: preparing SmolLM2 loads torch, which the worker process never does.
    cfg = replace(cfg, base_model=str(resolve_base_model(cfg.base_model, models_dir)))
    return run_training(store, job_id, cfg, Path(data_dir), on_progress=on_progress, should_stop=should_stop,
                        val_percent=val_percent)
