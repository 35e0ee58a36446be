"""The store on SQLite and PostgreSQL: idempotence, dedup, redaction, snapshots, migrations."""

import pytest
from sqlmodel import select

from core.states import ExampleStatus
from storage import open_store
from storage.examples import CREATED, DUPLICATE, EXISTS, UPGRADED, NewExample, add_examples, edit, set_status
from storage.models import Example
from storage.snapshots import VALIDATION, create_snapshot, side_of, snapshot_rows
from storage.stats import status


def _pairs(n, start=0, status=ExampleStatus.APPROVED):
    return [NewExample(f"test:{i}", f"question {i}?", f"answer {i}.", status=status, approved_by="U1")
            for i in range(start, start + n)]


def test_same_source_is_stored_once_and_same_content_dedups(store):
    with store.session() as s:
        first = add_examples(s, [NewExample("a", "How long is the trial?", "21 days.")])
        again = add_examples(s, [NewExample("a", "How long is the trial?", "21 days.")])
        # Same pair after case, whitespace and markup are normalised, from another source.
        dup = add_examples(s, [NewExample("b", "how  long is the *trial*?", "21 DAYS.")])
    assert [o for o, _ in first + again + dup] == [CREATED, EXISTS, DUPLICATE]
    with store.session() as s:
        assert len(s.exec(select(Example)).all()) == 1


def test_pii_is_redacted_before_it_is_stored(store):
    with store.session() as s:
        add_examples(s, [NewExample("a", "I'm jo@example.com, +49 151 2345 6789",
                                    "Refund to DE44 2505 0180 0009 3714 62 for QM-2026-00042")])
    with store.session() as s:
        ex = s.exec(select(Example)).one()
    assert ex.question == "I'm <email>, <phone>"
    assert ex.answer == "Refund to <iban> for QM-2026-00042"
    assert ex.source["redacted"] == ["email", "iban", "phone"]


def test_flagged_examples_are_never_approved_by_an_import(store):
    with store.session() as s:
        [(_, ex)] = add_examples(s, [NewExample("a", "q", "a", status=ExampleStatus.APPROVED, approved_by="U1",
                                                flags=[{"code": "asker_answer", "reason": "…"}])])
    assert ex.status == ExampleStatus.CANDIDATE and ex.approved_by is None


def test_reimport_upgrades_a_candidate_but_never_undoes_a_decision(store):
    with store.session() as s:
        add_examples(s, [NewExample("a", "q1", "a1"), NewExample("b", "q2", "a2")])
        set_status(s, [2], ExampleStatus.REJECTED, "U9")
    with store.session() as s:
        outcomes = add_examples(s, [NewExample("a", "q1", "a1", status=ExampleStatus.APPROVED, approved_by="U1"),
                                    NewExample("b", "q2", "a2", status=ExampleStatus.APPROVED, approved_by="U1")])
    assert [o for o, _ in outcomes] == [UPGRADED, EXISTS]
    with store.session() as s:
        assert [(e.status, e.approved_by) for e in s.exec(select(Example).order_by(Example.id))] == \
            [(ExampleStatus.APPROVED, "U1"), (ExampleStatus.REJECTED, None)]


def test_snapshot_is_immutable_and_validation_never_moves_to_training(store):
    with store.session() as s:
        add_examples(s, _pairs(200))
        snap1, created = create_snapshot(s, val_percent=15)
    assert created and snap1.n_examples == 200
    assert 15 <= snap1.n_validation <= 50  # 15 % of 200, give or take the hash
    with store.session() as s:
        val1 = {r.source_key for r in snapshot_rows(s, snap1.id, VALIDATION)}
        # The store grows and an example is edited: snapshot 1 stays as it was.
        add_examples(s, _pairs(300, start=200))
        edit(s, 1, "question 0, edited?", "answer 0, edited.")
        snap2, created = create_snapshot(s, val_percent=15)
    assert created and snap2.content_hash != snap1.content_hash
    with store.session() as s:
        rows1 = {r.source_key: r for r in snapshot_rows(s, snap1.id)}
        rows2 = {r.source_key: r for r in snapshot_rows(s, snap2.id)}
    assert rows1["test:0"].question == "question 0?"
    assert rows2["test:0"].question == "question 0, edited?"
    assert val1 <= {k for k, r in rows2.items() if r.side == VALIDATION}
    assert all(rows2[k].side == rows1[k].side for k in rows1)
    assert all(side_of(k, 15) == r.side for k, r in rows2.items())


def test_unchanged_store_reuses_the_snapshot(store):
    with store.session() as s:
        add_examples(s, _pairs(5))
        snap1, _ = create_snapshot(s, 15)
        snap2, created = create_snapshot(s, 15)
    assert not created and snap2.id == snap1.id


def test_migrations_apply_once_and_status_counts(store):
    again = open_store(store.url)  # a second start finds the schema current
    with again.session() as s:
        add_examples(s, _pairs(3) + _pairs(2, start=3, status=ExampleStatus.CANDIDATE))
        data = status(s)
    again.close()
    assert data["examples"] == {"candidate": 2, "approved": 3, "rejected": 0}
    assert data["snapshots"] == 0 and data["deployed"] is None
    assert set(data["jobs"]) == {"queued", "running", "succeeded", "failed", "cancelled"}


def test_status_counts_print_as_plain_words(store):
    """The counts are printed as they are (the demo's "→ examples {…}" line): plain words, not enum members."""
    with store.session() as s:
        add_examples(s, _pairs(1))
        data = status(s)
    assert repr(data["examples"]) == "{'candidate': 0, 'approved': 1, 'rejected': 0}"
    assert all(type(k) is str for group in ("jobs", "versions") for k in data[group])


def test_a_job_may_ask_for_the_preference_stage():
    from storage.jobs import check_params

    assert check_params({"preference": "true"}) == {"preference": True}
    assert check_params({"preference": "off"}) == {"preference": False}
    with pytest.raises(ValueError, match="preference=true"):
        check_params({"preference": "maybe"})


def test_a_job_may_ask_for_checkpoints_kept_by_answers():
    from storage.jobs import check_params

    assert check_params({"checkpoint_by": "Answers"}) == {"checkpoint_by": "answers"}
    assert check_params({"checkpoint_by": "eval_loss"}) == {"checkpoint_by": "eval_loss"}
    with pytest.raises(ValueError, match=r"bad checkpoint_by='accuracy' \(.*checkpoint_by=eval_loss\|answers"):
        check_params({"checkpoint_by": "accuracy"})
