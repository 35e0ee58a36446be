"""One training job as the worker's child process runs it: the job's parameters over the worker's defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from storage import Store
from storage.models import TrainingJob
from trainer.train import TrainingStopped as JobStopped

__all__ = ["JobStopped", "execute"]


def execute(store: Store, job_id: int, data_dir: Path, defaults: dict[str, Any], *,
            on_progress: Callable[[dict[str, Any]], None], should_stop: Callable[[], bool]) -> int:
    """Train, evaluate and store the new version; returns its id. Raises JobStopped when asked to stop."""
    from trainer.config import TrainConfig
    from trainer.pipeline import run_training

    with store.session() as s:
        job = s.get(TrainingJob, job_id)
        if job is None:
            raise LookupError(f"no training job {job_id}")
        params = dict(job.params)
    base = TrainConfig(base_model=defaults.get("base_model") or "", retrieval=bool(defaults.get("retrieval", True)),
                       **({"system_prompt": defaults["system_prompt"]} if defaults.get("system_prompt") else {}))
    # The worker's own training defaults (settings a person does not pass per job), then the job's parameters.
    cfg = base.with_overrides(defaults.get("train")).with_overrides(params)
    return run_training(store, job_id, cfg, Path(data_dir), on_progress=on_progress, should_stop=should_stop,
                        val_percent=int(defaults.get("val_percent", 15)))
