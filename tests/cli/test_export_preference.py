"""`ft examples export --format preference`: the preference records of every kind (agents' edits of drafts, drafts
discarded as wrong then answered, corrections) as TRL's conversational preference JSONL, loaded back with `datasets`
and rendered by TRL's own chat-template helper."""

from __future__ import annotations

import json

from core.contract import DEFAULT_SYSTEM_PROMPT
from core.prompt import prompt_messages
from core.states import DraftStatus, ExampleStatus
from fakes.tiny_model import build_tokenizer
from ftbot.settings import Settings
from storage import open_store
from storage.models import Draft, Example, Preference
from storage.snapshots import side_of
from tests.cli.test_cli import ft

CONTEXT = [("How long does the free trial last?", "The trial lasts 21 days.")]
EDITS = [  # question, the draft (rejected), what the agent sent (chosen)
    ("Can I try it for free?", "Yes, for 14 days.", "Yes: the free trial lasts 21 days."),
    ("Does QM-E42 mean my card failed?", "QM-E42 means your card was declined.",
     "No: QM-E42 means the bank link expired. Press Reconnect."),
    ("Is there a student discount?", "I don't know: none of our approved answers covers this.",
     "Yes, 50 % with a university e-mail address."),
]
# A draft discarded as wrong then answered in the thread (its prompt kept), and a 👎 + correction of a plain answer
# (no prompt stored: asked as the bot asks, from the question).
REPLIED = ("Can I export to PDF?", "No, only to Word.", "Yes: File, then Export, then PDF.")
CORRECTED = ("Where are invoices?", "Invoices are e-mailed monthly.", "Under Settings, then Billing.")
ALL = EDITS + [REPLIED, CORRECTED]


def _edits(db_url: str) -> None:
    """Preference rows as an agent's Edit & send leaves them: the draft, its edited pair, the record."""
    store = open_store(db_url)
    with store.session() as s:
        for n, (question, draft, sent) in enumerate(EDITS):
            context = CONTEXT if n < 2 else []  # the last one: retrieval found nothing close
            example = Example(source_key=f"slack:CPUB:{1790000000 + n}.5", dedup_key=f"k{n}", question=question,
                              answer=sent, status=ExampleStatus.CANDIDATE)
            s.add(example)
            s.flush()
            row = Draft(mode="draft", channel_id="CPUB", question_ts=f"{1790000000 + n}.1", question=question,
                        status=DraftStatus.EDITED, answer=draft, sent_text=sent, example_id=example.id, edit_chars=9)
            s.add(row)
            s.flush()
            s.add(Preference(draft_id=row.id, channel_id="CPUB", chosen=sent, rejected=draft, version_name="ft-1-v1",
                             prompt=prompt_messages(DEFAULT_SYSTEM_PROMPT, question, context), edited_by="UAGENT",
                             question=question, pair_key=example.source_key))
        question, draft, reply = REPLIED
        s.add(Preference(kind="discarded_then_answered", channel_id="CPUB", question=question, chosen=reply,
                         rejected=draft, prompt=prompt_messages(DEFAULT_SYSTEM_PROMPT, question, CONTEXT)))
        question, answer, correction = CORRECTED
        s.add(Preference(kind="corrected", channel_id="CPUB", question=question, chosen=correction, rejected=answer,
                         pair_key="feedback:7"))
        s.add(Preference(channel_id="CPUB", prompt=[], chosen="x", rejected="y"))  # unusable: left out, said so
    store.close()


def test_preference_export_loads_with_datasets_and_trl(ft_env, tmp_path):
    from datasets import load_dataset
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    assert ft("init").exit_code == 0
    _edits(ft_env)
    out = tmp_path / "prefs.jsonl"
    result = ft("examples", "export", "--format", "preference", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 5 preference record(s)" in result.stdout and "left out 1" in result.stderr

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in lines] == [(c, r) for _, r, c in ALL]
    # The prompt exactly as the bot asked: its system prompt, then the user turn with the retrieved pairs; a record
    # without one is asked as the bot asks, from its question.
    assert lines[0]["prompt"] == prompt_messages(DEFAULT_SYSTEM_PROMPT, EDITS[0][0], CONTEXT)
    assert lines[4]["prompt"] == prompt_messages(DEFAULT_SYSTEM_PROMPT, CORRECTED[0])

    dataset = load_dataset("json", data_files=str(out), split="train")
    assert dataset.column_names == ["prompt", "chosen", "rejected"] and len(dataset) == 5
    tokenizer = build_tokenizer()
    for row, (question, draft, sent) in zip(dataset, ALL):
        assert is_conversational(row)
        text = maybe_apply_chat_template(row, tokenizer)
        assert text["prompt"].startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>")
        assert text["prompt"].endswith(f"{question}<|im_end|>\n<|im_start|>assistant\n")
        assert text["chosen"] == f"{sent}<|im_end|>\n" and text["rejected"] == f"{draft}<|im_end|>\n"

    # Splits follow the edited pair's side: together they are the whole set, apart they share nothing.
    sides = {}
    for split in ("train", "validation"):
        result = ft("examples", "export", "--format", "preference", "--split", split)
        assert result.exit_code == 0, result.output
        sides[split] = [json.loads(line)["chosen"][0]["content"] for line in result.stdout.splitlines() if line.strip()]
    assert sorted(sides["train"] + sides["validation"]) == sorted(sent for _, _, sent in ALL)
    keys = {sent: f"slack:CPUB:{1790000000 + n}.5" for n, (_, _, sent) in enumerate(EDITS)} | {
        CORRECTED[2]: "feedback:7"}
    assert all(sent in sides[side_of(key, Settings().val_percent)] for sent, key in keys.items())
