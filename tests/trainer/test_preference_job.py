"""The preference stage inside a training job (SQLite and PostgreSQL, the tiny model, real TRL/peft and retrieval): it
runs on the snapshot's records after SFT, both adapters are judged on the same questions, the gate's decision is
stored in PreferenceStage, and the version's adapter is the one that goes forward; a job stopped in the stage
resumes without training or answering anything twice. Without enough records, the job says why it did not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contract import LiveEval, PreferenceStage, VersionMetrics
from core.states import DraftStatus, ExampleStatus, JobPhase, PreferenceKind
from storage import audience, preferences
from storage.examples import NewExample, add_examples
from storage.jobs import enqueue
from storage.models import Draft, ModelVersion
from storage.snapshots import TRAIN, side_of
from tests.trainer.conftest import ROWS, tiny_config
from trainer.gate import decide
from trainer.job import Evaluated, TrainingStopped, preference_stage, run_training

VAL_PERCENT = 50
# The team's corrections of drafts: (question, what the bot drafted, what the team sent).
CORRECTIONS = [
    ("How long is the trial, exactly?", "The trial lasts 14 days.", "The trial lasts 21 days."),
    ("What plans can I pick?", "There is one plan.", "Solo, Team and Enterprise."),
    ("QM-E42 shows up, what now?", "Restart the app.", "QM-E42 means the bank link expired: press Reconnect."),
    ("Where do I reset my password?", "Write to us.", "Use the link on the sign-in page."),
]


def _store_data(store, corrections=CORRECTIONS) -> None:
    """Approved pairs, a public channel with one question the team answered (live evaluation), and the team's
    corrections as preference records on the training side (each linked to a training pair)."""
    items = [NewExample(f"slack:C1:{i}.0", q, a, status=ExampleStatus.APPROVED, approved_by="UCUR")
             for i, (q, a) in enumerate(ROWS)]
    train_keys = [item.source_key for item in items if side_of(item.source_key, VAL_PERCENT) == TRAIN]
    assert len(train_keys) >= len(corrections)
    with store.session() as s:
        add_examples(s, items)
        audience.remember(s, "CPUB", "public", "support")
        s.add(Draft(mode="draft", channel_id="CPUB", question_ts="1790000001.000100", question="Is the trial free?",
                    status=DraftStatus.SENT, answer="a draft", sent_text="Yes, there is a free 21-day trial."))
        for key, (question, draft, sent) in zip(train_keys, corrections):
            preferences.add(s, kind=PreferenceKind.EDITED, channel_id="CPUB", question=question, chosen=sent,
                            rejected=draft, pair_key=key)


def _answer_files(data_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (data_dir / "answers").glob("*.json")}


@pytest.mark.slow
def test_the_stage_runs_after_sft_and_the_gate_picks_the_adapter_that_goes_forward(store, tiny_base, tmp_path):
    _store_data(store)
    cfg = tiny_config(tiny_base, epochs=1, preference=True, preference_min_records=4, preference_lr=5e-2,
                      preference_epochs=2)
    with store.session() as s:
        job_id = enqueue(s, {}, "UCUR").id

    # Stopped inside the stage (its second step): SFT, its evaluation and a checkpoint of the stage are kept.
    phases = []

    def on_progress(progress):
        phases.append(progress.phase)

    def should_stop():
        return phases.count(JobPhase.PREFERENCE) >= 1

    with pytest.raises(TrainingStopped, match="preference stage stopped at step"):
        run_training(store, job_id, cfg, tmp_path, val_percent=VAL_PERCENT, on_progress=on_progress,
                     should_stop=should_stop)
    assert JobPhase.TRAINING in phases and JobPhase.EVALUATING in phases and JobPhase.PREFERENCE in phases
    sft_dir = tmp_path / "adapters" / f"ft-{job_id}-v1"
    pref_dir = tmp_path / "adapters" / f"ft-{job_id}-v1-preference"
    assert (sft_dir / "adapter_model.safetensors").is_file() and (pref_dir / "checkpoints").is_dir()
    answered = _answer_files(tmp_path)  # base and SFT: held-out, probe, off-store and live answers

    # The worker runs it again: it resumes in the stage; nothing answered before is answered again.
    phases.clear()
    version_id = run_training(store, job_id, cfg, tmp_path, val_percent=VAL_PERCENT, on_progress=on_progress)
    assert JobPhase.TRAINING not in phases  # SFT was not trained again
    now = _answer_files(tmp_path)
    assert all(now[name] == mtime for name, mtime in answered.items())
    assert len(now) == len(answered) + 2  # SFT + preference's own answers: held-out and live

    with store.session() as s:
        version = s.get(ModelVersion, version_id)
    m = VersionMetrics.from_json(version.metrics)
    stage = m.preference
    assert stage is not None and stage.trained and stage.records == len(CORRECTIONS)
    assert stage.train["used"] == 4 and stage.train["resumed_from"] == "checkpoint-2" and stage.train["steps"] == 4
    assert stage.config["loss_type"] == ["sigmoid", "sft"] and stage.config["lr"] == 5e-2
    # Both judged on the same questions: held-out with what the bot would send, the probe, the live question.
    for scores in (stage.sft, stage.preferred):
        assert scores.sent.n == m.eval.n_key_fact and scores.probe is not None
    for live in (stage.sft_live, stage.preferred_live):
        assert live.agrees + live.other + live.declined + live.unchecked == 1
    # The gate's decision, as the written rule gives it; the adapter and headline figures are the kept one's.
    assert (stage.kept, stage.reason) == decide(stage.sft, stage.preferred, stage.sft_live, stage.preferred_live)
    ahead = (pref_dir, stage.preferred, stage.preferred_live) if stage.kept else (sft_dir, stage.sft, stage.sft_live)
    assert Path(version.adapter_path) == ahead[0].resolve()
    assert m.eval.new == ahead[1] and m.probe == ahead[1].probe and m.key_fact == ahead[1].key_fact
    assert m.live.new == ahead[2] and m.eval.base is not None
    # A dropped adapter is not left behind: no version points to it, so nothing would flag what it learned.
    assert (pref_dir / "adapter_model.safetensors").is_file() if stage.kept else not pref_dir.exists()
    assert not (pref_dir / "checkpoints").exists()


@pytest.mark.slow
def test_without_enough_records_the_job_says_why_and_sft_goes_forward(store, tiny_base, tmp_path):
    _store_data(store, CORRECTIONS[:3])
    cfg = tiny_config(tiny_base, epochs=1, preference=True, preference_min_records=8)
    with store.session() as s:
        job_id = enqueue(s, {}, "UCUR").id
    version_id = run_training(store, job_id, cfg, tmp_path, val_percent=VAL_PERCENT)
    with store.session() as s:
        version = s.get(ModelVersion, version_id)
    stage = VersionMetrics.from_json(version.metrics).preference
    assert stage == PreferenceStage(records=3, reason="3 preference records; the stage needs 8",
                                    config=cfg.preference_settings())
    assert Path(version.adapter_path) == (tmp_path / "adapters" / version.name).resolve()
    assert not (tmp_path / "adapters" / f"{version.name}-preference").exists()


def test_the_stage_says_off_or_how_many_records_it_lacks_before_loading_anything(tiny_base):
    sft = Evaluated(Path("ft-1-v1"), ev=None, live=LiveEval())

    def judge(adapter_dir):  # never asked: the stage does not run
        raise AssertionError(adapter_dir)

    records = [{"prompt": [], "question": "q?", "chosen": "a.", "rejected": "b."}]
    off = tiny_config(tiny_base)
    assert not off.preference  # off by default until bench/preference.py shows a gain
    ahead, stage = preference_stage(off, records, sft, judge)
    assert ahead is sft and (stage.trained, stage.kept, stage.records) == (False, False, 1)
    assert stage.reason == "off (FT_PREFERENCE_STAGE, or /ft train preference=true); 1 preference record waiting"
    ahead, stage = preference_stage(tiny_config(tiny_base, preference=True, preference_min_records=2), records, sft,
                                    judge)
    assert ahead is sft and stage.reason == "1 preference record; the stage needs 2" and not stage.trained
