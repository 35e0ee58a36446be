"""Preference records in dataset snapshots, on SQLite and PostgreSQL: copied with the snapshot, hashed into it, split
like their pairs, and held to the audience rule (a private channel's record trains the shared adapter only once an
admin marked the channel shareable)."""

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from core.states import ExampleStatus, PreferenceKind, Rating
from storage import audience, drafts, feedback, preferences, retention
from storage.erasure import forget_user
from storage.examples import NewExample, add_examples, set_status
from storage.models import (
    DatasetSnapshot,
    Draft,
    Example,
    Feedback,
    ModelVersion,
    Preference,
    SnapshotPreference,
    utcnow,
)
from storage.snapshots import TRAIN, VALIDATION, create_snapshot, side_of

PROMPT = [{"role": "system", "content": "Answer from the pairs."},
          {"role": "user", "content": "How long is the trial?"}]


def _record(s, channel, n, **extra):
    values = dict(kind=PreferenceKind.EDITED, channel_id=channel, question=f"question {n}?", prompt=PROMPT,
                  chosen=f"The trial is {n} days.", rejected="The trial is 7 days.", asker="UASK", edited_by="UAGENT")
    return preferences.add(s, **(values | extra))


def _channels(s):
    audience.remember(s, "CPUB", "public", "help")
    audience.remember(s, "GPRIV", "private", "vip")


def test_snapshot_copies_the_records_the_shared_adapter_may_learn(store):
    with store.session() as s:
        _channels(s)
        add_examples(s, [NewExample("test:1", "q?", "a.", status=ExampleStatus.APPROVED, approved_by="U1",
                                    channel_id="CPUB", audience="public")])
        public = _record(s, "CPUB", 1).id
        private = _record(s, "GPRIV", 2).id
        snap, _ = create_snapshot(s, val_percent=15)
    with store.session() as s:
        [row] = preferences.snapshot_preferences(s, snap.id)
        assert snap.n_preferences == 1 and snap.n_examples == 1
        assert (row.preference_id, row.kind, row.channel_id, row.question, row.prompt) == \
            (public, "edited", "CPUB", "question 1?", PROMPT)
        assert row.side == side_of(f"preference:{public}", 15) and preferences.usable(row)
        assert preferences.snapshot_preferences(s, snap.id, row.side) == [row]
        assert preferences.snapshot_preferences(s, snap.id, TRAIN if row.side == VALIDATION else VALIDATION) == []

        # The admin marks the private channel shareable: the next snapshot holds its record too.
        audience.set_shareable(s, "GPRIV", True, by="UADMIN")
        snap2, created = create_snapshot(s, val_percent=15)
    assert created and snap2.content_hash != snap.content_hash
    with store.session() as s:
        assert [r.preference_id for r in preferences.snapshot_preferences(s, snap2.id)] == [public, private]
        assert len(preferences.snapshot_preferences(s, snap.id)) == 1  # the older snapshot is as it was


def test_a_new_record_makes_a_new_snapshot_and_copies_do_not_change(store):
    with store.session() as s:
        _channels(s)
        first = _record(s, "CPUB", 1)
        snap1, _ = create_snapshot(s, 0)
        again, created = create_snapshot(s, 0)
        assert not created and again.id == snap1.id
        first.chosen = "The trial is 30 days, edited later."
        _record(s, "CPUB", 2)
        snap2, created = create_snapshot(s, 0)
    assert created and snap2.id != snap1.id and snap2.n_preferences == 2
    with store.session() as s:
        [copy] = preferences.snapshot_preferences(s, snap1.id)
        assert copy.chosen == "The trial is 1 days." and copy.side == TRAIN


def test_a_record_takes_its_pairs_side_and_leaves_with_a_rejected_pair(store):
    """The held-out answer never trains through its record; a pair a curator rejected takes its record out."""
    with store.session() as s:
        _channels(s)
        keys = [f"draft:{i}" for i in range(60)]
        held_out = next(k for k in keys if side_of(k, 15) == VALIDATION)
        trained = next(k for k in keys if side_of(k, 15) == TRAIN)
        [(_, ex)] = add_examples(s, [NewExample(trained, "q?", "The trial is 2 days.", channel_id="CPUB",
                                                audience="public")])
        _record(s, "CPUB", 1, pair_key=held_out)
        _record(s, "CPUB", 2, pair_key=trained)
        snap, _ = create_snapshot(s, 15)
        assert [r.side for r in preferences.snapshot_preferences(s, snap.id)] == [VALIDATION, TRAIN]
        set_status(s, [ex.id], ExampleStatus.REJECTED, "UCUR")
        snap2, _ = create_snapshot(s, 15)
        assert [r.side for r in preferences.snapshot_preferences(s, snap2.id)] == [VALIDATION]


def test_only_usable_records_are_stored(store):
    with store.session() as s:
        _channels(s)
        assert _record(s, "CPUB", 1, chosen="The trial is 7 days.") is None  # the same text
        assert _record(s, "CPUB", 1, rejected="  ") is None
        assert _record(s, "CPUB", 1, prompt=[], question="") is None
        kept = _record(s, "CPUB", 1, prompt=[], kind=PreferenceKind.CORRECTED, feedback_id=None)
        assert kept is not None and kept.prompt == [] and preferences.usable(kept)
        assert s.exec(select(Preference)).all() == [kept]
    with store.session() as s:
        snap, _ = create_snapshot(s, 0)
        assert [type(r) for r in preferences.snapshot_preferences(s, snap.id)] == [SnapshotPreference]


def test_a_channel_made_private_takes_its_records_out_of_the_next_snapshot(store):
    with store.session() as s:
        _channels(s)
        _record(s, "CPUB", 1)
        assert create_snapshot(s, 0)[0].n_preferences == 1
        audience.remember(s, "CPUB", "private", "help")
        snap, created = create_snapshot(s, 0)
    assert created and snap.n_preferences == 0


def test_a_correction_takes_the_drafts_prompt_and_a_declined_answer_makes_no_record(store):
    """Auto mode: the answer came from a draft, whose prompt is kept; a question the bot declined has no answer to
    prefer against; a curator's answer to a 👎'd question is a correction too."""
    with store.session() as s:
        _channels(s)
        fb = feedback.record(s, question="How long is the trial?", answer="7 days.", user="UASK", version_name="v1",
                             source={"channel": "CPUB"})
        row = drafts.open_draft(s, mode="auto", channel_id="CPUB", question_ts="1.1", asker="UASK",
                                question="How long is the trial?")
        drafts.record_answer(s, row.id, status="answered", answer="7 days.", model_answer="7 days.", declined=False,
                             grounding={}, context=[], prompt=PROMPT, version_name="v1", model="m",
                             feedback_id=fb.id)
        declined = feedback.record(s, question="Do you ship to Mars?", answer="I don't know.", user="UASK",
                                   version_name="v1", source={"channel": "CPUB"}, declined=True)
        rated = feedback.record(s, question="Is there an API?", answer="No.", user="UASK", version_name="v1",
                                source={"channel": "CPUB"})
        feedback.correct(s, fb.id, "The trial is 21 days.", "UFIX")
        feedback.correct(s, declined.id, "No, only to Earth.", "UFIX")
        feedback.rate(s, rated.id, Rating.DOWN, "UASK")
        feedback.answer(s, rated.id, "Yes, a REST API.", "UCUR")
    with store.session() as s:
        records = list(s.exec(select(Preference).order_by(Preference.id)))
    assert [(p.kind, p.feedback_id, p.draft_id, p.prompt, p.chosen, p.edited_by) for p in records] == [
        ("corrected", fb.id, row.id, PROMPT, "The trial is 21 days.", "UFIX"),
        ("corrected", rated.id, None, [], "Yes, a REST API.", "UCUR")]


def test_a_reused_answer_edited_discarded_or_corrected_makes_no_record(store):
    """A draft or answer that gave an approved answer as it is (core.reuse): people wrote the text, not the model, so
    Edit & send, a discard as wrong then a reply, and a 👎 + correction keep the pair but make no preference record
    (its rejected side would teach the model away from an approved answer); a model's draft edited makes one."""
    reused = {"example_id": 1, "source_key": "slack:CPUB:1.1", "score": 0.91, "approved_by": "UCUR"}
    approved = "The trial lasts 30 days; extend it under Billing."

    def answered(s, ts, *, reuse):
        row = drafts.open_draft(s, mode="draft", channel_id="CPUB", question_ts=ts, asker="UASK",
                                question="How long does the trial run?")
        fb = feedback.record(s, question=row.question, answer=approved, user="UASK", version_name="v1",
                             source={"channel": "CPUB", **({"reused": reused} if reuse else {})})
        return drafts.record_answer(s, row.id, status="pending", answer=approved, model_answer=approved,
                                    declined=False, grounding={}, context=["slack:CPUB:1.1"], prompt=PROMPT,
                                    version_name="v1", model="m", feedback_id=fb.id, reused=reused if reuse else None)

    with store.session() as s:
        _channels(s)
        edited = answered(s, "1.1", reuse=True)
        assert drafts.claim(s, edited.id, "UAGENT") is not None
        drafts.sent(s, edited.id, text="The trial lasts 21 days now.", sent_ts="1.2", by="UAGENT", curator=False)
        wrong = answered(s, "2.1", reuse=True)
        assert drafts.discard(s, wrong.id, "UAGENT", "wrong") is not None
        assert drafts.answered_after_discard(s, wrong.id, by="UAGENT", text="Trials end after 14 days.") is None
        rated = answered(s, "3.1", reuse=True)
        feedback.correct(s, rated.feedback_id, "It is 14 days for teams.", "UASK")
        model = answered(s, "4.1", reuse=False)  # the same edit of the model's draft: a record
        assert drafts.claim(s, model.id, "UAGENT") is not None
        drafts.sent(s, model.id, text="The trial lasts 21 days now.", sent_ts="4.2", by="UAGENT", curator=False)
    with store.session() as s:
        records = list(s.exec(select(Preference)))
        pairs = {e.source_key: e.answer for e in s.exec(select(Example))}
        edited = s.get(Draft, edited.id)
    assert [(p.kind, p.draft_id) for p in records] == [(PreferenceKind.EDITED, model.id)]
    assert (edited.status, edited.sent_text) == ("edited", "The trial lasts 21 days now.")
    assert pairs[f"draft:{edited.id}"] == "The trial lasts 21 days now."  # the edit is still a pair
    assert pairs[f"feedback:{rated.feedback_id}"] == "It is 14 days for teams."  # and so is the correction


def test_erasure_removes_a_persons_records_and_their_snapshot_copies(store):
    """As asker, as editor, as the author of a correction: their records and every copy go, and a version trained on
    a snapshot that held only their record (no pair of theirs) is flagged; another's record stays."""
    with store.session() as s:
        _channels(s)
        _record(s, "CPUB", 1, asker="UZED")
        _record(s, "CPUB", 2, edited_by="UZED")
        fb = feedback.record(s, question="Is there an API?", answer="No.", user="UASK", version_name="v1",
                             source={"channel": "CPUB"})
        feedback.correct(s, fb.id, "Yes, a REST API.", "UZED")
        kept = _record(s, "CPUB", 3).id
        snap, _ = create_snapshot(s, 0)
        s.add(ModelVersion(name="ft-1-v1", snapshot_id=snap.id))
    assert snap.n_preferences == 4
    with store.session() as s:
        report, _ = forget_user(s, "UZED", by="UADMIN", retrain=False)
    assert (report.preferences, report.preference_copies, report.versions) == (3, 3, ["ft-1-v1"])
    with store.session() as s:
        assert [p.id for p in s.exec(select(Preference))] == [kept]
        assert [r.preference_id for r in preferences.snapshot_preferences(s, snap.id)] == [kept]
        assert s.get(DatasetSnapshot, snap.id).n_preferences == 1


def test_retention_deletes_old_records_that_never_became_training_data_with_their_drafts(store):
    """FT_RETENTION_DAYS: an old record goes with its draft or question unless its team text became an approved pair
    or a snapshot holds it (then record and copy stay, the copy as long as its snapshot); recent ones stay."""
    old = utcnow() - timedelta(days=40)

    def drafted(s, n, channel="GPRIV", key=None):
        row = drafts.open_draft(s, mode="draft", channel_id=channel, question_ts=f"{n}.1", asker="UASK",
                                question=f"question {n}?")
        return _record(s, channel, n, draft_id=row.id, pair_key=key or f"draft:{row.id}"), row

    with store.session() as s:
        _channels(s)
        goes, goes_draft = drafted(s, 1)  # a private channel's, never snapshotted, its pair a candidate
        add_examples(s, [NewExample("draft:approved", "question 2?", "The trial is 2 days.", channel_id="GPRIV",
                                    status=ExampleStatus.APPROVED, approved_by="UCUR")])
        approved, _ = drafted(s, 2, key="draft:approved")
        snapshotted, _ = drafted(s, 3, channel="CPUB")
        recent, _ = drafted(s, 4)
        fb = feedback.record(s, question="Is there an API?", answer="No.", user="UASK", version_name="v1",
                             source={"channel": "GPRIV"})
        feedback.correct(s, fb.id, "Yes, a REST API.", "UFIX")
        corrected = s.exec(select(Preference).where(Preference.feedback_id == fb.id)).one()
        snap, _ = create_snapshot(s, 0)
        for row in (goes, approved, snapshotted, corrected):
            row.created_at = old
        for row in s.exec(select(Draft)):
            row.updated_at = old if row.question != "question 4?" else row.updated_at
        s.get(Feedback, fb.id).created_at = old
        s.exec(update(Example).where(Example.source_key == f"feedback:{fb.id}").values(updated_at=old))
        ids = {"goes": goes.id, "approved": approved.id, "snapshotted": snapshotted.id, "recent": recent.id,
               "corrected": corrected.id, "goes_draft": goes_draft.id}
    with store.session() as s:
        done = retention.purge(s, 30)
    assert (done.preferences, done.drafts, done.feedback) == (2, 1, 1)
    with store.session() as s:
        assert {p.id for p in s.exec(select(Preference))} == {ids["approved"], ids["snapshotted"], ids["recent"]}
        assert s.get(Draft, ids["goes_draft"]) is None and s.get(Feedback, fb.id) is None
        assert [r.preference_id for r in preferences.snapshot_preferences(s, snap.id)] == [ids["snapshotted"]]


def test_the_migration_fills_existing_records_from_their_drafts(fresh_db_url):
    """0006 on a store at 0005: an existing record is an edit; its question and pair from its draft, its audience
    from its channel's kind where ftbot knows it (else unknown: nothing becomes more visible by migrating)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from storage.db import MIGRATIONS, make_engine

    engine = make_engine(fresh_db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def upgrade(to: str) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, to)

    upgrade("0005")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO slackchannel (id, name, kind, mode, shareable, created_at, updated_at) VALUES "
                          "('GPRIV', 'team', 'private', 'draft', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO example (id, source_key, dedup_key, question, answer, status, flags, source, "
                          "created_at, updated_at, audience) VALUES (1, 'draft:1', 'd1', 'q?', 'sent', 'candidate', "
                          "'[]', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'private')"))
        for n, (channel, example) in enumerate((("GPRIV", 1), ("CELSE", None)), start=1):
            conn.execute(text(
                "INSERT INTO draft (id, mode, channel_id, question_ts, question, status, answer, model_answer, model, "
                "declined, grounding, context, prompt, asked_at, updated_at, example_id) VALUES (:id, 'draft', :c, "
                ":ts, :q, 'edited', 'draft', 'draft', 'm', false, '{}', '[]', '[]', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, :ex)"),
                {"id": n, "c": channel, "ts": f"{n}.1", "q": f"question {n}?", "ex": example})
            conn.execute(text("INSERT INTO preference (draft_id, channel_id, prompt, chosen, rejected, created_at) "
                              "VALUES (:id, :c, '[]', 'sent', 'draft', CURRENT_TIMESTAMP)"), {"id": n, "c": channel})
    upgrade("head")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, question, audience, pair_key FROM preference ORDER BY id")).all()
        n_preferences = conn.execute(text("SELECT COUNT(*) FROM snapshotpreference")).scalar()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("edited", "question 1?", "private", "draft:1"),
                                        ("edited", "question 2?", "unknown", None)]
    assert n_preferences == 0


def test_taking_a_sharing_mark_back_flags_versions_trained_on_the_channels_records(store):
    with store.session() as s:
        _channels(s)
        _record(s, "GPRIV", 1)
        audience.set_shareable(s, "GPRIV", True, by="UADMIN")
        snap, _ = create_snapshot(s, 0)
        s.add(ModelVersion(name="ft-1-v1", snapshot_id=snap.id))
        s.flush()
        change = audience.set_shareable(s, "GPRIV", False, by="UADMIN")
        assert change.flagged_versions == ["ft-1-v1"]
        assert create_snapshot(s, 0)[0].n_preferences == 0
