"""Preference records in dataset snapshots, on SQLite and PostgreSQL: copied with the snapshot, hashed into it, split
like their pairs, and held to the audience rule (a private channel's record trains the shared adapter only once an
admin marked the channel shareable)."""

from sqlmodel import select

from core.states import ExampleStatus, PreferenceKind
from storage import audience, preferences
from storage.examples import NewExample, add_examples, set_status
from storage.models import Preference, SnapshotPreference
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


def test_only_usable_records_are_stored_and_a_second_correction_replaces_the_first(store):
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
