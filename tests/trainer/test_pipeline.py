"""A job from snapshot to a ModelVersion awaiting approval, on SQLite and PostgreSQL."""

from pathlib import Path

import pytest

from core.contract import VersionMetrics
from core.states import ExampleStatus, VersionStatus
from storage.examples import NewExample, add_examples
from storage.jobs import enqueue
from storage.models import ModelVersion, TrainingJob
from storage.snapshots import side_of
from tests.trainer.conftest import ROWS
from trainer.job import run_training

VAL_PERCENT = 50
LONG = ("Tell me everything about billing?", "Billing works like this. " * 60)


def _approve_all(store):
    items = [NewExample(f"slack:C1:{i}.0", q, a, status=ExampleStatus.APPROVED, approved_by="UCUR")
             for i, (q, a) in enumerate(ROWS + [LONG])]
    sides = {side_of(item.source_key, VAL_PERCENT) for item in items}
    assert sides == {"train", "validation"}
    with store.session() as s:
        add_examples(s, items)


@pytest.mark.slow
def test_run_training_stores_a_version_with_its_evaluation(store, tiny_cfg, tmp_path):
    _approve_all(store)
    with store.session() as s:
        job_id = enqueue(s, {}, "UCUR").id

    version_id = run_training(store, job_id, tiny_cfg, tmp_path, val_percent=VAL_PERCENT)

    with store.session() as s:
        version, job = s.get(ModelVersion, version_id), s.get(TrainingJob, job_id)
    assert job.snapshot_id is not None and version.snapshot_id == job.snapshot_id
    assert version.name == f"ft-{job_id}-v1" and version.status == VersionStatus.AWAITING_APPROVAL
    assert version.base_model == tiny_cfg.base_model and not version.below_deployed
    adapter = Path(version.adapter_path)
    assert adapter == (tmp_path / "adapters" / version.name).resolve()
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "train_config.json").is_file()
    m = VersionMetrics.from_json(version.metrics)
    assert m.to_json() == version.metrics  # the column holds exactly the record, nothing lost either way
    for scores in (m.eval.base, m.eval.new):
        assert 0 <= scores.rougeL <= 1 and 0 <= scores.probe <= 1 and scores.key_fact is not None
    assert m.eval.deployed is None and m.eval.n_probe == 12
    assert m.key_fact == m.eval.new.key_fact and m.rougeL == m.eval.new.rougeL
    assert Path(m.loss_plot).is_file() and m.tokens_per_s > 0 and m.train.steps > 0
    assert 1 <= len(m.samples) <= 5 and all(s.new and s.base and s.context is not None and s.new_with_retrieval
                                             for s in m.samples)
    assert m.eval.new.with_retrieval.key_fact is not None or m.eval.n_key_fact == 0
    # What the bot would send, judged as the bot judges it: every question counted once, off-store ones too.
    for scores in (m.eval.base, m.eval.new):
        sent = scores.sent
        assert sent.right + sent.wrong + sent.dont_know == sent.n == m.eval.n_key_fact
        assert sent.n_offstore == 12 and 0 <= sent.offstore_refused <= 12
    assert all(s.sent == s.new_with_retrieval or s.sent.startswith("I don't know") for s in m.samples)
    # Reported, not cut (pairs that hold it in their retrieved context may be too long as well).
    assert "slack:C1:8.0" in [e["source_key"] for e in m.long_examples]

    # Asking again for the same job gives the same version (the worker may have missed the answer).
    assert run_training(store, job_id, tiny_cfg, tmp_path, val_percent=VAL_PERCENT) == version_id

    # The next job: a new immutable name, compared with the deployed version.
    with store.session() as s:
        s.get(ModelVersion, version_id).status = VersionStatus.DEPLOYED
        job2 = enqueue(s, {}, "UCUR").id
    second_id = run_training(store, job2, tiny_cfg, tmp_path, val_percent=VAL_PERCENT)
    with store.session() as s:
        second = s.get(ModelVersion, second_id)
    assert second.name == f"ft-{job2}-v2" and second.adapter_path != version.adapter_path
    m2 = VersionMetrics.from_json(second.metrics)
    new, old = m2.eval.new, m2.eval.deployed
    assert old is not None and m2.deployed_name == version.name
    assert second.below_deployed == (new.key_fact < old.key_fact or new.rougeL < old.rougeL)
