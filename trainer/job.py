"""One training job, start to finish: `run_training` reads top to bottom, one banner a step:
parameters → base model → dataset snapshot → LoRA training → evaluation → preference stage and its gate →
ModelVersion (awaiting approval).

No Slack and no worker here: the worker (trainer.worker) runs `run_training` in a child process and reports
progress and the outcome; the bot renders the ModelVersion it stores. A restarted job finds its snapshot
(job.snapshot_id), its adapter directory and its newest checkpoint, and resumes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from sqlmodel import Session, col, select

from core.contract import JobProgress, LiveEval, PreferenceStage, Scores, TrainSummary, VersionMetrics
from core.states import JobPhase, VersionStatus
from storage import Store
from storage.models import ModelVersion, TrainingJob
from storage.preferences import snapshot_preferences, usable
from storage.snapshots import TRAIN, VALIDATION, create_snapshot, snapshot_rows
from storage.versions import deployed as deployed_version
from trainer.config import TrainConfig
from trainer.context import Contexts
from trainer.live import LiveQuestions, read_live, retrieve_live
from trainer.train import ProgressFn, StopFn, TrainingStopped

__all__ = ["TrainingStopped", "adapters_dir", "retrieved_contexts", "run_training", "version_name"]

log = logging.getLogger("ftbot.trainer")

# How long a job's own reads and writes wait out a busy database (each try waits FT_DB_BUSY_TIMEOUT_S) before
# the job fails with the database's error: past the lease, the worker has stopped the job anyway.
DB_PATIENCE_S = 120.0


def run_training(store: Store, job_id: int, cfg: TrainConfig, data_dir: Path, *, models_dir: Path | None = None,
                 val_percent: int = 15, on_progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> int:
    """Train, evaluate and store a new version for this job; returns the new ModelVersion id.

    `cfg` is what every job starts from (ftbot.wiring.train_config: FT_BASE_MODEL, the system prompt,
    retrieval, the grounding spec); the job's own parameters (storage.jobs.check_params) go over it.
    Raises TrainingStopped when should_stop() ended training (a checkpoint is kept for resuming).
    """
    from trainer.base_model import resolve_base_model
    from trainer.launch import train

    data_dir = Path(data_dir)

    # --- Parameters: the job's own over the worker's.
    with store.session() as s:
        job = s.get(TrainingJob, job_id)
        if job is None:
            raise LookupError(f"no training job {job_id}")
        params = dict(job.params)
    cfg = cfg.with_overrides(params)

    # --- Base model, resolved once: FT_BASE_MODEL, or SmolLM2 prepared in models_dir (FT_DATA_DIR/models).
    # Here in the job's process: preparing SmolLM2 loads torch, which the worker's process never does.
    cfg = replace(cfg, base_model=str(resolve_base_model(cfg.base_model, models_dir or data_dir / "models")))

    # --- Dataset: this job's snapshot (the same one again when the job is resumed). Short transactions only: the
    # one write first, then the reads; the embedding model loads and embeds after both (a session open across it
    # held SQLite's write lock for minutes, and the worker's heartbeat failed meanwhile).
    start = store.patiently(lambda s: _snapshot_for_job(s, job_id, val_percent), within_s=DB_PATIENCE_S)
    if start.version_id is not None:  # an earlier attempt got this far; the worker only missed the answer
        return start.version_id
    data = store.patiently(lambda s: _read(s, cfg, job_id, start.snapshot_id, data_dir), within_s=DB_PATIENCE_S)
    train_rows, val_rows = _plain(data.train), _plain(data.validation)
    contexts = None
    if data.vectors is not None:  # embedding from here on, with no session open
        from core.embedder import Embedder
        from trainer.context import TrainIndex

        embedder = Embedder()
        contexts = _contexts(TrainIndex(_rows(data.train), data.vectors, embedder), data.train, data.validation)
        retrieve_live(data.live, embedder)  # real questions the team answered (trainer.live)
    log.info("job %s: %s from snapshot %s (%d train, %d validation)", job_id, data.name, start.snapshot_id,
             len(train_rows), len(val_rows))

    # --- Training (resumes from out_dir/checkpoints when an earlier attempt left one): here, or in a process per
    # GPU when the host has several (trainer.launch).
    out_dir = adapters_dir(data_dir) / data.name
    result = train(cfg, train_rows, val_rows, out_dir, on_progress=on_progress, should_stop=should_stop,
                   contexts=contexts)
    if result.stopped:
        raise TrainingStopped(f"job {job_id} stopped at step {result.steps} of {result.total_steps}")

    # --- Evaluation against the base model and the deployed version (same base only: an adapter fits one base):
    # held-out questions, the forgetting probe, the live questions (trainer.live).
    if on_progress:
        on_progress(JobProgress(step=result.steps, total=result.steps, loss=result.train_loss,
                                eval_loss=result.eval_loss, tokens_per_s=result.tokens_per_s,
                                phase=JobPhase.EVALUATING))
    compared = data.deployed if data.deployed and data.deployed.comparable(cfg.base_model) else None
    if data.deployed and compared is None:
        log.warning("deployed %s is not comparable (adapter missing or another base model)", data.deployed.name)
    judge = Judge(cfg, val_rows, contexts, compared, data.live, data_dir / "answers")
    sft = judge(out_dir)

    # --- Preference stage (trainer.preference) on the snapshot's records, when on and enough of them; the gate
    # (trainer.gate) keeps it only when it loses to SFT alone on nothing. `ahead` is the adapter that goes forward.
    ahead, stage = preference_stage(cfg, data.preferences, sft, judge, on_progress=on_progress,
                                    should_stop=should_stop, job_id=job_id)

    # --- Version, awaiting an admin's approval: the headline figures are those of the adapter that goes forward.
    new, old = ahead.ev.metrics.new, ahead.ev.metrics.deployed
    assert new is not None  # evaluate() always scores the new adapter
    metrics = VersionMetrics(
        key_fact=new.key_fact, rougeL=new.rougeL, probe=new.probe,  # the headline numbers
        key_fact_with_retrieval=new.with_retrieval.key_fact if new.with_retrieval else None,
        eval=ahead.ev.metrics, deployed_name=compared.name if compared else None,
        train=TrainSummary.from_json(result.to_json()), loss_plot=result.loss_plot, samples=ahead.ev.samples,
        max_new_tokens=cfg.max_new_tokens, long_examples=result.long_examples, tokens_per_s=result.tokens_per_s,
        config=cfg.as_dict(), live=ahead.live, preference=stage)

    def store_version(s: Session) -> int:
        version = ModelVersion(name=data.name, job_id=job_id, snapshot_id=start.snapshot_id,
                               base_model=cfg.base_model, adapter_path=str(ahead.adapter_dir.resolve()),
                               status=VersionStatus.AWAITING_APPROVAL, metrics=metrics.to_json(),
                               below_deployed=_worse(new, old))
        s.add(version)
        s.flush()
        return version.id

    version_id = store.patiently(store_version, within_s=DB_PATIENCE_S)
    log.info("job %s: %s stored (key fact %s, ROUGE-L %s, probe %s; base %s; preference: %s)", job_id, data.name,
             new.key_fact, new.rougeL, new.probe, ahead.ev.metrics.base.key_fact if ahead.ev.metrics.base else None,
             stage.reason)
    return version_id


# --- Evaluation and the preference stage ------------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluated:
    """One adapter, evaluated: held-out questions and probe (trainer.evaluate), live questions (trainer.live)."""

    adapter_dir: Path
    ev: Any  # trainer.evaluate.Evaluation
    live: LiveEval


@dataclass(frozen=True)
class Judge:
    """Evaluates an adapter of this job on the same held-out questions, probe and live questions as any other, beside
    the base model and the deployed version. Each model's answers are kept in answers_dir (trainer.evaluate
    .answered_once), so the base's, the deployed version's and an adapter evaluated before are not answered again:
    evaluating SFT + preference after SFT generates only SFT + preference's answers."""

    cfg: TrainConfig
    val_rows: list[dict[str, str]]
    contexts: Contexts | None
    compared: Deployed | None  # the deployed version, when comparable
    live: LiveQuestions
    answers_dir: Path

    def __call__(self, adapter_dir: Path) -> Evaluated:
        from trainer.evaluate import evaluate

        cfg, contexts = self.cfg, self.contexts
        compared_path = self.compared.adapter_path if self.compared else None
        compared_name = self.compared.name if self.compared else None
        live = replace(self.live, answers={})  # this adapter's answers; the others' come from answers_dir
        ev = evaluate(cfg.base_model, self.val_rows, adapter_dir, system_prompt=cfg.system_prompt,
                      deployed_adapter=compared_path, max_new_tokens=cfg.max_new_tokens, threads=cfg.threads,
                      val_hits=contexts.validation_hits if contexts else None,
                      offstore_hits=contexts.offstore_hits if contexts else None, grounding=cfg.grounding,
                      on_model=live.hook(compared_name, answers_dir=self.answers_dir,
                                         model_dirs={"base": cfg.base_model, "deployed": compared_path,
                                                     "new": adapter_dir}),
                      answers_dir=self.answers_dir)
        return Evaluated(Path(adapter_dir), ev, live.judge(cfg, adapter_dir, compared_path))


def preference_stage(cfg: TrainConfig, records: list[dict[str, Any]], sft: Evaluated,
                     judge: Callable[[Path], Evaluated], *, on_progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None, job_id: int | None = None
                     ) -> tuple[Evaluated, PreferenceStage]:
    """(the adapter that goes forward, the stage's record): SFT + preference when the stage ran and the gate kept it,
    else SFT alone. It runs when it is on and the snapshot holds at least preference_min_records usable records (train
    side), into `<SFT adapter>-preference`; both adapters are judged on the same questions. A stopped run raises
    TrainingStopped (its checkpoint is resumed from, the SFT adapter and both evaluations are reused)."""
    from trainer.gate import decide
    from trainer.preference import NothingToPrefer, train_preference

    stage = PreferenceStage(records=len(records), config=cfg.preference_settings())
    if not cfg.preference:
        return sft, stage.model_copy(update={"reason": "off"})
    if len(records) < cfg.preference_min_records:
        said = f"{len(records)} preference record{'' if len(records) == 1 else 's'}"
        return sft, stage.model_copy(update={"reason": f"{said}; the stage needs {cfg.preference_min_records}"})
    out_dir = sft.adapter_dir.with_name(f"{sft.adapter_dir.name}-preference")
    try:
        result = train_preference(cfg, sft.adapter_dir, records, out_dir, on_progress=on_progress,
                                  should_stop=should_stop)
    except NothingToPrefer as exc:
        return sft, stage.model_copy(update={"reason": str(exc)})
    if result.stopped:
        raise TrainingStopped(f"job {job_id}: preference stage stopped at step {result.steps} of {result.total_steps}")
    if on_progress:
        on_progress(JobProgress(step=result.steps, total=result.steps, loss=result.train_loss,
                                phase=JobPhase.PREFERENCE))
    preferred = judge(out_dir)
    kept, reason = decide(sft.ev.metrics.new, preferred.ev.metrics.new, sft.live.new, preferred.live.new)
    stage = stage.model_copy(update={
        "trained": True, "kept": kept, "reason": reason, "train": result.summary(),
        "sft": sft.ev.metrics.new, "preferred": preferred.ev.metrics.new,
        "sft_live": sft.live.new, "preferred_live": preferred.live.new})
    log.info("preference stage: %s", reason)
    return (preferred if kept else sft), stage


# --- The steps' parts ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deployed:
    """The version customers get now, as a new one is compared with it."""

    name: str
    adapter_path: str
    base_model: str

    def comparable(self, base_model: str) -> bool:
        """Its adapter is there and was trained on this base model."""
        return Path(self.adapter_path).is_dir() and Path(self.base_model).resolve() == Path(base_model).resolve()


@dataclass(frozen=True)
class JobStart:
    """Where a job starts: its snapshot, or the version an earlier attempt of it already stored."""

    snapshot_id: int | None = None
    version_id: int | None = None


@dataclass(frozen=True)
class JobData:
    """What a job reads in one transaction, before anything is embedded."""

    train: list[Any]  # the snapshot's rows (storage.snapshots.snapshot_rows)
    validation: list[Any]
    vectors: dict[int, tuple[str, bytes]] | None  # the training rows' stored vectors; None without retrieval
    deployed: Deployed | None
    name: str  # the new version's (version_name)
    live: LiveQuestions
    preferences: list[dict[str, Any]]  # the snapshot's usable preference records, train side (storage.preferences)


def _snapshot_for_job(s: Session, job_id: int, val_percent: int) -> JobStart:
    job = s.get(TrainingJob, job_id)
    if job is None:
        raise ValueError(f"no training job {job_id}")
    existing = s.exec(select(ModelVersion.id).where(ModelVersion.job_id == job_id)
                      .order_by(col(ModelVersion.id))).first()
    if existing is not None:
        return JobStart(version_id=existing)
    if job.snapshot_id is None:
        snapshot, _ = create_snapshot(s, val_percent)
        job.snapshot_id = snapshot.id
        s.add(job)
    return JobStart(snapshot_id=job.snapshot_id)


def _read(s: Session, cfg: TrainConfig, job_id: int, snapshot_id: int, data_dir: Path) -> JobData:
    from trainer.context import stored_vectors

    train_snap, val_snap = snapshot_rows(s, snapshot_id, TRAIN), snapshot_rows(s, snapshot_id, VALIDATION)
    current = deployed_version(s)
    records = [{"prompt": list(r.prompt), "question": r.question, "chosen": r.chosen, "rejected": r.rejected}
               for r in snapshot_preferences(s, snapshot_id, TRAIN) if usable(r)]
    return JobData(train=train_snap, validation=val_snap,
                   vectors=stored_vectors(s, _rows(train_snap)) if cfg.retrieval else None,
                   deployed=Deployed(current.name, current.adapter_path, current.base_model) if current else None,
                   name=version_name(s, job_id, data_dir), live=read_live(s, cfg, train_snap), preferences=records)


def adapters_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "adapters"


def version_name(session: Session, job_id: int, data_dir: Path) -> str:
    """`ft-<job>-v<n>`: n counts the versions so far. A NEW name each time, never reused (vLLM serves
    a reloaded name from stale prefix cache); a restarted job gets back its own unfinished directory."""
    root = adapters_dir(data_dir)
    taken = set(session.exec(select(ModelVersion.name)))
    pattern = re.compile(rf"ft-{job_id}-v\d+$")
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if pattern.match(d.name) and d.name not in taken:
                return d.name  # this job's earlier attempt: its checkpoints are there
    n = len(taken) + 1
    while f"ft-{job_id}-v{n}" in taken or (root / f"ft-{job_id}-v{n}").exists():
        n += 1
    return f"ft-{job_id}-v{n}"


def _plain(rows: list[Any]) -> list[dict[str, str]]:
    return [{"source_key": r.source_key, "question": r.question, "answer": r.answer} for r in rows]


def _rows(items: list[Any]) -> list[Any]:
    from trainer.context import Row

    return [Row(r.example_id, r.source_key, r.question, r.answer) for r in items]


def retrieved_contexts(session: Session, train: list[Any], val: list[Any]) -> Contexts:
    """The contexts the bot would retrieve for every training, validation and unknown question (trainer.context).
    Embeds inside `session`: for benches; a job reads first and embeds after its session (run_training)."""
    from trainer.context import TrainIndex, stored_vectors

    return _contexts(TrainIndex(_rows(train), stored_vectors(session, _rows(train))), train, val)


def _contexts(index: Any, train: list[Any], val: list[Any]) -> Contexts:
    from trainer.context import contexts
    from trainer.data import unknown_questions
    from trainer.evaluate import offstore_questions

    found = contexts(index, _rows(train), _rows(val), unknown_questions(), offstore=offstore_questions())
    if found.missing:
        log.warning("%d training example(s) have no current stored embedding (run `ft index rebuild`): the index "
                    "the trainer retrieves from lacks them", found.missing)
    return found


def _worse(new: Scores | None, old: Scores | None) -> bool:
    """The new version scores below the deployed one on key facts or ROUGE-L."""
    if new is None or old is None:
        return False
    pairs = ((new.key_fact, old.key_fact), (new.rougeL, old.rougeL))
    return any(a is not None and b is not None and a < b for a, b in pairs)
