"""`ft forget-user`: a person's text seeded into every table and into the data folder is gone afterwards, from the
database (every row of every table, and the SQLite file's bytes) and the data folder; only the audit record says
an erasure happened. The versions trained on it are flagged, and a retraining job says why it exists."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, select
from typer.testing import CliRunner

from bot.approvals.render import approval_request
from core.states import ExampleStatus, VersionStatus
from ftbot.cli.main import app
from storage import embeddings, open_store
from storage.audience import remember, set_shareable
from storage.examples import NewExample, add_examples
from storage.jobs import enqueue
from storage.models import (
    ChannelChange,
    DatasetSnapshot,
    Draft,
    Erasure,
    Example,
    Feedback,
    ModelVersion,
    Preference,
    SnapshotPreference,
    TrainingJob,
)
from storage.snapshots import create_snapshot

ZED, OTHER, CURATOR = "UZED4242", "UOTHER", "UCURATOR"
# What Zed wrote: each text appears nowhere else, so any trace of it after the erasure is a leak.
ASKED = "Why was my zebra parcel returned to the depot twice"
ANSWERED = "Zebra parcels wait seven days at the depot before returning"
CORRECTED = "Actually the quokka voucher expires after ninety days"
ASKED_BOT = "Can the wombat subscription be paused over winter"
DRAFT_Q = "Is the narwhal lounge open on public holidays"
SENT = "Yes, the narwhal lounge opens at ten on holidays"
REPLIED = "The pelican courier collects on Sundays from noon"  # their reply after a draft was discarded as wrong
WRITTEN = "Ocelot hampers ship on Tuesdays only"  # their answer to a knowledge gap, offered as a draft
THEIRS = (ASKED, ANSWERED, CORRECTED, ASKED_BOT, DRAFT_Q, SENT, REPLIED, WRITTEN)
# Another customer's record and draft, asked with Zed's approved answer retrieved as context: they stay, their
# prompts go (a trainer builds a prompt from the question).
CONTEXT_PROMPT = [{"role": "system", "content": "Answer from these pairs."},
                  {"role": "user", "content": f"Q: How long do parcels wait at the depot?\nA: {ANSWERED}\n\n"
                                              "How long does the depot keep my parcel?"}]


def _seed(store, data_dir: Path) -> None:
    with store.session() as s:
        remember(s, "CSUP", "public", "support")
        set_shareable(s, "CSUP", True, ZED)  # Zed's id in the channel's audit trail
        add_examples(s, [
            NewExample("slack:CSUP:1.1", ASKED, "Returned parcels go back after a failed second delivery.",
                       status=ExampleStatus.APPROVED, approved_by=ZED, labelled_by=CURATOR,
                       source={"kind": "slack", "channel_id": "CSUP", "ts": "1.1", "thread_ts": "1.0", "asker": ZED,
                               "answerer": OTHER}),
            NewExample("slack:CSUP:2.1", "How long do parcels wait at the depot?", ANSWERED,
                       status=ExampleStatus.APPROVED, approved_by=CURATOR, labelled_by=ZED,
                       source={"kind": "slack", "channel_id": "CSUP", "ts": "2.1", "thread_ts": "2.0", "asker": OTHER,
                               "answerer": ZED}),
            NewExample("slack:CSUP:3.1", "Do you ship to islands?", "Yes, every island with a ferry port.",
                       status=ExampleStatus.APPROVED, approved_by=CURATOR, labelled_by=ZED,  # Zed only labelled it
                       source={"kind": "slack", "channel_id": "CSUP", "ts": "3.1", "thread_ts": "3.0", "asker": OTHER,
                               "answerer": CURATOR}),
        ])
        untouched = add_examples(s, [NewExample("slack:CSUP:4.1", "Can I change my address?", "Yes, in Settings.",
                                                status=ExampleStatus.APPROVED, approved_by=CURATOR,
                                                source={"kind": "slack", "channel_id": "CSUP", "ts": "4.1",
                                                        "asker": OTHER, "answerer": CURATOR})])
        # Feedback: Zed's question to the bot, declined (the curators' queue), and Zed's correction of another's.
        s.add(Feedback(user=ZED, question=ASKED_BOT, answer="I don't know.", rating="none",
                       source={"channel": "CSUP", "declined": True}))
        theirs_corrected = Feedback(user=OTHER, question="When does the voucher expire?", answer="After a year.",
                                    rating="down", source={"channel": "CSUP"})
        s.add(theirs_corrected)
        s.flush()
        from storage.feedback import correct

        correct(s, theirs_corrected.id, CORRECTED, ZED)
        # Drafts and preference records (the draft mode's tables).
        mine = Draft(mode="draft", channel_id="CSUP", question_ts="9.1", asker=ZED, question=DRAFT_Q,
                     answer="The lounge is open.", model_answer="The lounge is open.")
        sent = Draft(mode="draft", channel_id="CSUP", question_ts="9.2", asker=OTHER, question="Is parking free?",
                     answer="Parking is free.", model_answer="Parking is free.", acted_by=ZED, sent_text=SENT)
        # A later question given Zed's approved answer as it is (core.reuse), approved by Zed too.
        zeds_answer = s.exec(select(Example).where(Example.source_key == "slack:CSUP:2.1")).one()
        zeds_answer.approved_by = ZED
        reused = Draft(mode="draft", channel_id="CSUP", question_ts="9.6", asker=OTHER,
                       question="How long does a parcel stay at the depot?", answer=ANSWERED, model_answer=ANSWERED,
                       reused={"example_id": zeds_answer.id, "approved_by": ZED, "score": 0.8, "link": None})
        kept = Draft(mode="draft", channel_id="CSUP", question_ts="9.7", asker=OTHER, question="Ferries to islands?",
                     answer="Yes, every island with a ferry port.", model_answer="Yes, every island with a ferry port.",
                     reused={"example_id": 999, "approved_by": CURATOR, "score": 0.8, "link": None})
        s.add_all([mine, sent, reused, kept])
        s.flush()
        s.add(Preference(draft_id=sent.id, channel_id="CSUP", prompt=[{"role": "user", "content": "Is parking free?"}],
                         chosen=SENT, rejected="Parking is free.", asker=OTHER, edited_by=ZED))
        s.add(Preference(draft_id=mine.id, channel_id="CSUP", prompt=[{"role": "user", "content": DRAFT_Q}],
                         chosen="Open daily.", rejected="The lounge is open.", asker=ZED, edited_by=OTHER,
                         question=DRAFT_Q))
        discarded = Draft(mode="draft", channel_id="CSUP", question_ts="9.3", asker=OTHER, status="discarded",
                          discard_reason="wrong", question="Do you collect on Sundays?", answer="No collections.",
                          model_answer="No collections.", acted_by=CURATOR)
        s.add(discarded)
        s.flush()
        s.add(Preference(kind="discarded_then_answered", draft_id=discarded.id, channel_id="CSUP",
                         question="Do you collect on Sundays?", chosen=REPLIED, rejected="No collections.",
                         asker=OTHER, edited_by=ZED))
        s.add(Preference(channel_id="CSUP", prompt=CONTEXT_PROMPT, question="How long does the depot keep my parcel?",
                         chosen="Seven days.", rejected="One day.", asker=OTHER, edited_by=CURATOR))
        s.add(Draft(mode="draft", channel_id="CSUP", question_ts="9.4", asker=OTHER, prompt=CONTEXT_PROMPT,
                    question="How long does the depot keep my parcel?", answer="One day.", model_answer="One day."))
        # Zed's answer to a knowledge gap (bot.gaps): a pair, and the waiting draft offered it.
        offered = Draft(mode="draft", channel_id="CSUP", question_ts="9.5", asker=OTHER, declined=True,
                        question="When do hampers ship?", answer=WRITTEN, written_by=ZED)
        s.add(offered)
        s.flush()
        from storage.gap_answers import answer_gap

        answer_gap(s, [f"draft:{offered.id}"], question="When do hampers ship?", answer=WRITTEN, by=ZED, curator=True,
                   viewer=None)
        # The snapshot holds the pairs and the records (their copies in snapshotpreference).
        old_version = ModelVersion(name="ft-0-v1", status=VersionStatus.RETIRED)  # trained before any of it
        s.add(old_version)
        snap, _ = create_snapshot(s, val_percent=50)
        # The index: a row per approved pair (the vectors' values do not matter here).
        embeddings.put(s, [(ex_id, "all-MiniLM-L6-v2", 2, "h", b"\0" * 8) for ex_id, _ in embeddings.approved_texts(s)])
        job = enqueue(s, {}, ZED)
        job.snapshot_id, job.status = snap.id, "succeeded"
        version = ModelVersion(name="ft-1-v1", job_id=job.id, snapshot_id=snap.id, status=VersionStatus.DEPLOYED,
                               decided_by=ZED, metrics={"samples": [{"question": ASKED, "reference": "x", "new": "y"},
                                                                    {"question": "Can I change my address?",
                                                                     "reference": "Yes, in Settings.", "new": "Yes"}]})
        s.add(version)
        assert untouched
    # The data folder: an adapter's files holding the text and the id.
    adapter = data_dir / "adapters" / "ft-1-v1"
    adapter.mkdir(parents=True)
    (adapter / "train.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": ASKED}, {"role": "assistant", "content": "x"}]}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "Can I change my address?"}]}) + "\n")
    (adapter / "notes.json").write_text(json.dumps({"labelled_by": ZED, "answer": ANSWERED}, ensure_ascii=False))
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00weights")


def _dump(store) -> str:
    """Every row of every table, as text."""
    out = []
    with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            out += [f"{table.name}: {tuple(row)}" for row in conn.execute(sa_select(table))]
    return "\n".join(out)


def _traces(text: str) -> list[str]:
    return [t for t in (*THEIRS, ZED) if t in text]


def test_forget_user_erases_their_text_everywhere(ft_env, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "data"
    store = open_store(ft_env)
    _seed(store, data_dir)
    before = _dump(store)
    assert set(_traces(before)) == {*THEIRS, ZED}  # the seed reached every table it should

    result = CliRunner().invoke(app, ["forget-user", ZED])
    assert result.exit_code == 0, result.output
    assert "still needs a retrain: ft-1-v1" in result.output and "ft-1-v1 is deployed" in result.output

    # The database: no row anywhere holds their text or id (the audit record included).
    after = _dump(store)
    assert _traces(after) == [], _traces(after)
    if ft_env.startswith("sqlite"):  # ... nor the file's bytes (deleted rows' pages are rewritten)
        db_file = Path(ft_env.split("///", 1)[1])
        raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
        assert [t for t in (*THEIRS, ZED) if t.encode() in raw] == []
    # The data folder: not a trace in any file.
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert _traces(path.read_bytes().decode("utf-8", "replace")) == [], path
    assert "Can I change my address?" in (data_dir / "adapters/ft-1-v1/train.jsonl").read_text()  # others' stay
    # Nothing logged their text or id.
    assert _traces(caplog.text) == []

    with store.session() as s:
        # Other people's data stays: the unrelated pair, the pair Zed only labelled (their id cleared).
        questions = {r.question for r in s.exec(select(Feedback))}
        assert questions == {"When does the voucher expire?"}
        # Left: the parking draft (texts cleared), the Sunday one, the depot one, the hampers one (Zed's answer
        # cleared), the one that gave Zed's approved answer as it is (cleared) and the one that gave another's.
        drafts = list(s.exec(select(Draft).order_by(Draft.question_ts)))
        assert [d.question_ts for d in drafts] == ["9.2", "9.3", "9.4", "9.5", "9.6", "9.7"]
        # The draft that gave Zed's answer keeps no text of it; another's reused answer and its approver stay.
        assert (drafts[4].answer, drafts[4].model_answer, drafts[4].reused) == ("", "", {})
        assert drafts[5].answer == "Yes, every island with a ferry port." and drafts[5].reused["approved_by"] == CURATOR
        [kept] = s.exec(select(Preference)).all()  # another's record that only held Zed's answer as context
        [copy] = s.exec(select(SnapshotPreference)).all()
        assert (kept.question, kept.prompt, copy.preference_id, copy.prompt) == (
            "How long does the depot keep my parcel?", [], kept.id, [])
        snap = s.get(DatasetSnapshot, copy.snapshot_id)
        assert snap.n_preferences == 1
        assert s.exec(select(ChannelChange)).one().by is None
        [audit] = s.exec(select(Erasure)).all()
        # Zed's pairs: asked (the zebra parcel), answered (the depot), corrected (the voucher), written (the hampers).
        assert audit.counts["examples"] == 4 and audit.counts["feedback"] == 1 and len(audit.user_hash) == 64
        # Zed's records: asked (the lounge), edited (parking), replied (Sundays), corrected (the voucher).
        assert (audit.counts["preferences"], audit.counts["preference_copies"], audit.counts["prompts_cleared"]) == (
            4, 4, 3)
        # Drafts whose texts went: parking (Zed sent it), hampers (Zed's gap answer), the depot (Zed's answer reused).
        assert audit.counts["drafts_cleared"] == 3 and audit.counts["drafts"] == 1
        job = s.get(TrainingJob, audit.job_id)
        version = s.exec(select(ModelVersion).where(ModelVersion.name == "ft-1-v1")).one()
        assert [f["code"] for f in version.flags] == ["erased_data"]
        assert [sample["question"] for sample in version.metrics["samples"]] == ["Can I change my address?"]
        assert s.exec(select(ModelVersion).where(ModelVersion.name == "ft-0-v1")).one().flags == []
    # The retraining job says why it exists, in the approval request of the version it makes.
    assert job.status == "queued" and "erased at a person's request" in job.reason
    request = json.dumps(approval_request(job, version))
    assert "Why this job" in request and "contains erased data" in request

    listed = CliRunner().invoke(app, ["versions", "list"], env={"COLUMNS": "250"})
    assert "contains erased data" in next(row for row in listed.output.splitlines() if "ft-1-v1" in row)
    assert "contains erased data" not in next(row for row in listed.output.splitlines() if "ft-0-v1" in row)
    store.close()


def test_forget_user_refuses_what_is_not_a_user_id(ft_env):
    for raw in ("not a user", "U" + "X" * 10_000, "u123abc", "U12-34"):
        result = CliRunner().invoke(app, ["forget-user", raw])
        assert result.exit_code == 1 and "is not a Slack user id" in result.output
        assert len(result.output.strip().splitlines()) == 1 and len(result.output) < 200


def test_a_database_error_logs_no_text(store):
    """Logs never held the text: an error's message (logged with its traceback) shows no parameters."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from storage.models import Example

    with pytest.raises(IntegrityError) as caught:
        with store.session() as s:
            s.add_all([Example(source_key="k1", dedup_key="same", question=ASKED, answer=ANSWERED),
                       Example(source_key="k2", dedup_key="same", question=ASKED, answer=ANSWERED)])
    assert ASKED not in str(caught.value) and "hidden due to hide_parameters" in str(caught.value)


def test_forget_user_reaches_exports_loose_and_zipped_jsonl_and_gzip_in_the_data_folder(ft_env, tmp_path):
    """The issue's probe: an export kept in FT_DATA_DIR, the same zipped, a JSONL log and its .gz. Afterwards a grep
    of every file (gzip decompressed, zip members read) finds none of their text, id or names; others' stay."""
    from tests.storage.test_erasure_files import OTHERS, build_folder, contents, traces

    data_dir = build_folder(tmp_path / "data")
    result = CliRunner().invoke(app, ["forget-user", "UZED4242", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert "exports/acme.zip" in report["files"] and "logs/messages.jsonl.gz" in report["files"]
    assert report["files_left"] == []
    assert traces(data_dir) == []
    assert all(t in text for t in OTHERS for text in (contents(data_dir)["logs/messages.jsonl"],))
    store = open_store(ft_env)
    with store.session() as s:
        assert len(s.exec(select(Erasure)).all()) == 1  # the files named them: an erasure, audited
    store.close()


def test_forget_user_names_a_file_it_could_not_rewrite_and_exits_1(ft_env, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "notes.json").write_text(json.dumps({"asker": ZED}))
    (data_dir / "dump.bin").write_bytes(b"\x00" + ZED.encode() + b"\x00")
    result = CliRunner().invoke(app, ["forget-user", ZED])
    assert result.exit_code == 1
    assert "left in the data folder: dump.bin" in result.output and "could not be rewritten" in result.output
    assert "Traceback" not in result.output and ZED not in (data_dir / "notes.json").read_text()
    result = CliRunner().invoke(app, ["forget-user", ZED, "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["files_left"][0].startswith("dump.bin: ")


def test_an_id_nothing_names_is_refused_without_an_audit_row(ft_env, tmp_path):
    """`UNOSUCHUSER1` (shaped like an id, never seen by ftbot): exit 1, nothing written."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.json").write_text(json.dumps({"asker": "UOTHER"}))
    for args in (["forget-user", "UNOSUCHUSER1"], ["forget-user", "UNOSUCHUSER1", "--json"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "nothing of UNOSUCHUSER1 is stored" in result.output and len(result.output.strip().splitlines()) == 1
    store = open_store(ft_env)
    with store.session() as s:
        assert s.exec(select(Erasure)).all() == []
    store.close()


def test_the_database_inside_the_data_folder_is_left_to_compact(tmp_path, monkeypatch):
    """The usual layout (FT_DATA_DIR holds ftbot.db): the database is not a file erasure names as left (VACUUM
    rewrites it), nor does a deleted row's page there count as ftbot still storing someone."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("FT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FT_DATABASE_URL", f"sqlite:///{data_dir / 'ftbot.db'}")
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    (data_dir / "notes.json").write_text(json.dumps({"asker": ZED}))
    result = CliRunner().invoke(app, ["forget-user", ZED, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files"] == ["notes.json"] and json.loads(result.output)["files_left"] == []
    assert ZED.encode() not in b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    result = CliRunner().invoke(app, ["forget-user", ZED])  # now nothing names them, the audit row aside
    assert result.exit_code == 1 and f"nothing of {ZED} is stored" in result.output
