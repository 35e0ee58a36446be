"""The realistic Quillmate export in ../shared: every ✅ accounted for, no PII stored, idempotent."""

import json
import re

import pytest
from sqlmodel import select

from bot.slack.importer import import_slack_export
from bot.slack.threads import Rules, source_key
from core.states import ExampleStatus
from storage.models import Example
from tests.conftest import QUILLMATE_EXPORT

pytestmark = pytest.mark.skipif(not QUILLMATE_EXPORT.is_dir(), reason=f"shared data not found at {QUILLMATE_EXPORT}")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+\d[\d ()-]{7,}\d")


def _labels():
    """(channel id, ts, author, root author) of every ✅'d reply, read straight from the files."""
    channels = {c["name"]: c["id"] for c in json.loads((QUILLMATE_EXPORT / "channels.json").read_text())}
    labels = []
    for name, cid in channels.items():
        messages = [m for day in sorted((QUILLMATE_EXPORT / name).glob("*.json")) for m in json.loads(day.read_text())]
        roots = {m["ts"]: m for m in messages}
        for m in messages:
            if any(r["name"] == "white_check_mark" for r in m.get("reactions", [])) and m.get("thread_ts") != m["ts"]:
                labels.append((cid, m["ts"], m.get("user"), roots[m["thread_ts"]].get("user")))
    return labels


def test_shared_export_imports_every_label_without_pii(store):
    leads = frozenset({"U0AG10XZMXH", "U0AG1DZTDZ2"})  # the export's team lead and head of support
    rules = Rules(curators=leads)
    summary = import_slack_export(store, QUILLMATE_EXPORT, label_emoji="white_check_mark", rules=rules)
    with store.session() as s:
        stored = {e.source_key: e for e in s.exec(select(Example))}
    labels = _labels()
    assert summary.labels == len(labels) > 100
    # Every labelled reply is stored, or was the same pair as one already stored.
    missing = [label for label in labels if source_key(label[0], label[1]) not in stored]
    assert len(missing) == summary.skipped.get("duplicate of a stored pair", 0) <= 3
    # Answers the asker wrote and ✅'d themselves are flagged, never approved.
    asker_labelled = [stored[source_key(c, ts)] for c, ts, author, asker in labels if author == asker]
    assert asker_labelled and all(
        e.status == ExampleStatus.CANDIDATE and e.flags[0]["code"] == "asker_answer" for e in asker_labelled)
    assert summary.approved > 0 and all(
        e.approved_by in leads for e in stored.values() if e.status == ExampleStatus.APPROVED)
    for e in stored.values():
        for text in (e.question, e.answer):
            assert not EMAIL.search(text) and not PHONE.search(text), text
    assert any("<email>" in e.question + e.answer for e in stored.values())

    again = import_slack_export(store, QUILLMATE_EXPORT, label_emoji="white_check_mark", rules=rules)
    assert again.imported == again.upgraded == 0
    with store.session() as s:
        assert {e.source_key: (e.status, e.updated_at) for e in s.exec(select(Example))} == \
            {k: (e.status, e.updated_at) for k, e in stored.items()}
