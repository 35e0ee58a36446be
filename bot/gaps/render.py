"""Knowledge gaps in Block Kit: a gap (size, channels, example questions, the closest approved pair, "Write the
answer"), the `/ft gaps` list, App Home's section, the weekly digest, and the form an answer is written in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.capture.render import qa_inputs, stored
from bot.gaps.rules import BUTTON_LIMIT, METADATA_LIMIT, Shown, Target, pack, target
from bot.slack.blocks import button, context, escape, header, section
from core.text import clip
from storage.gap_answers import Member, Written

WRITE, WRITE_MODAL = "gap_write", "gap_write_modal"
LISTED = 10  # gaps in `/ft gaps` (3 blocks each: well inside Slack's 50 a message)
HOME_LISTED = 3
DIGEST_LISTED = 5
FORM_QUESTIONS = 10  # questions the form shows above its fields

ONLY_TEAM = "Only the support team (agents, curators and admins) can write answers for knowledge gaps; nothing changed."
STALE = "This gap's questions are no longer stored (erased or cleaned up); `/ft gaps` lists the current gaps."
FORM_TOO_SLOW = "Slack took too long to open the form; please press the button again."
NO_EMBEDDER = ("Knowledge gaps need the embedding model that retrieval uses, and retrieval is off here "
               "(FT_RETRIEVAL, or the model is not installed: see `ft doctor`).")


def _when(since: datetime) -> str:
    return f"{since:%d %b %Y %H:%M} UTC"


def _where(channels: list[str]) -> str:
    named = [f"<#{c}>" for c in channels if not c.startswith("D")]
    dms = len(channels) - len(named)
    if dms:
        named.append(f"{dms} direct message{'s' if dms != 1 else ''}" if dms > 1 or named else "a direct message")
    return ", ".join(named) or "no channel"


def _nearest(shown: Shown) -> str:
    pair = shown.gap.nearest
    if pair is None:
        return "No approved answer comes close."
    return (f"Closest approved answer (score {pair.score:.2f}, example {pair.example_id}): "
            f"_{escape(clip(pair.question, 150, one_line=True))}_ → {escape(clip(pair.answer, 200, one_line=True))}")


def gap_blocks(shown: Shown, channel: str | None) -> list[dict[str, Any]]:
    """One gap: what was asked, where, how often, the nearest thing the store knows, and the button that opens the
    form (carrying the gap's questions, open ones first, within Slack's bound on a button's value)."""
    head = (f"*{shown.size} question{'s' if shown.size != 1 else ''}* in {_where(shown.channels)}"
            + (f" · {shown.open} still waiting" if shown.open else ""))
    asked = "\n".join(f"• {escape(clip(q, 200, one_line=True))}" for q in shown.examples())
    value = pack(target(shown, channel), BUTTON_LIMIT)
    return [section(f"{head}\n{asked}"), context(_nearest(shown)),
            {"type": "actions", "elements": [button("Write the answer", WRITE, value, style="primary")]}]


def _gaps(gaps: list[Shown], channel: str | None, limit: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for shown in gaps[:limit]:
        blocks += [{"type": "divider"}, *gap_blocks(shown, channel)]
    if len(gaps) > limit:
        more = len(gaps) - limit
        blocks.append(context(f"…and {more} smaller gap{'s' if more != 1 else ''}."))
    return blocks


def listing(gaps: list[Shown], since: datetime, channel: str | None) -> dict[str, Any]:
    """`/ft gaps`: every gap the viewer may see, biggest first; or one sentence when there is none."""
    if not gaps:
        return {"text": f"No knowledge gaps since {_when(since)}: no group of similar questions went unanswered."}
    questions = sum(g.size for g in gaps)
    text = (f"{len(gaps)} knowledge gap{'s' if len(gaps) != 1 else ''} since {_when(since)}: {questions} questions "
            "the bot could not answer, grouped")
    blocks = [section(f"*{text}*"), context("Declined or handed off, drafts discarded as wrong or outdated, and "
                                            "answers rated :-1:. Questions from channels not visible here are left "
                                            "out.")]
    return {"text": text, "blocks": blocks + _gaps(gaps, channel, LISTED)}


def home_section(gaps: list[Shown] | None, *, failed: bool = False) -> list[dict[str, Any]]:
    """App Home's "Knowledge gaps" (curators and admins): the week's three biggest, or that they are being found."""
    blocks: list[dict[str, Any]] = [{"type": "divider"}, header("Knowledge gaps")]
    if failed:
        return blocks + [context("Could not group this week's unanswered questions; the bot's log says why.")]
    if gaps is None:
        return blocks + [context("Grouping this week's unanswered questions… (this tab updates itself)")]
    if not gaps:
        return blocks + [section("No knowledge gaps this week: no group of similar questions went unanswered.")]
    blocks.append(context("The biggest of the last 7 days; `/ft gaps` lists them all."))
    return blocks + _gaps(gaps, None, HOME_LISTED)


def digest(gaps: list[Shown], since: datetime, channel: str) -> dict[str, Any]:
    """The weekly digest in the curators' channel."""
    questions = sum(g.size for g in gaps)
    text = (f"This week's knowledge gaps: {len(gaps)} group{'s' if len(gaps) != 1 else ''} of similar questions "
            f"({questions} in all) the bot could not answer since {_when(since)}")
    blocks = [header("Knowledge gaps this week"), section(text + ". An answer written here is used from the next "
                                                          "question on, and offered to the questions still waiting.")]
    return {"text": text, "blocks": blocks + _gaps(gaps, channel, DIGEST_LISTED)}


def write_modal(members: list[Member], question: str, t: Target) -> dict[str, Any]:
    """The form: the gap's questions, then the question (its most common wording, editable) and the answer."""
    lines = [f"• {escape(clip(m.question, 200, one_line=True))}" for m in members[:FORM_QUESTIONS]]
    if len(members) > FORM_QUESTIONS:
        lines.append(f"…and {len(members) - FORM_QUESTIONS} more")
    intro = (f"*{len(members)} question{'s' if len(members) != 1 else ''} the bot could not answer:*\n"
             + "\n".join(lines))
    note = ("A curator's answer is approved at once and used from the next question on; an agent's waits for a "
            "curator. Questions still waiting in draft-mode channels get it as a draft to send.")
    return {
        "type": "modal", "callback_id": WRITE_MODAL, "private_metadata": pack(t, METADATA_LIMIT),
        "title": {"type": "plain_text", "text": "Write the answer"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [section(clip(intro, 2900)), context(note), *qa_inputs(question, "")],
    }


def written(w: Written, *, curator: bool) -> str:
    """What became of a written answer: the pair, the queue, the drafts offered it."""
    text = stored(w.outcome, w.example, by_curator=curator)
    if w.answered:
        text += f" It answers {w.answered} question{'s' if w.answered != 1 else ''} in the curators' queue."
    if w.offered:
        where = ", ".join(sorted({f"<#{channel}>" for _, channel in w.offered}))
        text += (f" Offered as a draft to {len(w.offered)} waiting question{'s' if len(w.offered) != 1 else ''}: "
                 f"see {where}.")
    return text
