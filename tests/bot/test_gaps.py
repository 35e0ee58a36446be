"""Knowledge gaps in Slack, through real Bolt over signed HTTP, the fake Slack and the stub model: customers' questions
the bot really declined (a draft-mode channel, mentions in a private channel) make the gaps. `/ft gaps` shows each
viewer only what their channel's scope allows; App Home shows the week's biggest to curators; the weekly digest
posts once a week; "Write the answer" stores the pair (a curator's approved, an agent's a candidate, a private
channel's gap a pair of that channel) and offers it to the gap's waiting drafts, whose new cards Send as any other."""

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.gaps.digest import GapsDigest
from core.states import ChannelKind, DraftStatus, ExampleSource, ExampleStatus
from storage.models import Example, Feedback, GapDigest, Preference, utcnow
from tests.bot.conftest import ADMIN, AGENT, ASKER, CURATOR, OTHER, command_reply, command_text, settled
from tests.bot.drafting import DRAFTS, buttons, drafts_of, finished_cards

PRIVATE, CURATORS = "GPRIVATE", "CAPPROVE"
PUBLIC_ASKS = ["How do I export my invoices as a PDF?", "Can I export an invoice to PDF?",
               "Is there a way to download my invoices as PDF files?"]
PRIVATE_ASKS = ["Where is the PDF export for our invoices?", "How can our finance team export invoices to PDF?"]
ANSWER = "Open Billing → Invoices and press Export PDF; every invoice downloads as one PDF."


def _examples(store):
    with store.session() as s:
        return list(s.exec(select(Example).where(Example.source["kind"].as_string() == ExampleSource.GAP)))


def _write_buttons(message):
    return [e["value"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] == "gap_write"]


def _form_values(question, answer):
    return {"question": {"value": {"type": "plain_text_input", "value": question}},
            "answer": {"value": {"type": "plain_text_input", "value": answer}}}


@pytest.fixture
async def gaps_bot(bot, store):
    """Three paraphrases declined in a public draft-mode channel, two in a private channel's mentions, and one
    question like no other (a gap needs two alike)."""
    from core.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever

    try:
        bot.deps.retriever = Retriever(store, Embedder())  # nothing approved: nothing close, so every answer declines
    except EmbedderError as exc:
        pytest.skip(str(exc))
    # Imported once before the clock runs: the first gaps found in a process import scikit-learn and scipy, which
    # takes seconds on a loaded machine, eating into the fake Slack's waits.
    import sklearn.cluster  # noqa: F401
    bot.slack.channel(DRAFTS, "support-drafts").channel(PRIVATE, "finance", "private").channel(CURATORS, "curators")
    await command_reply(bot, f"channel mode draft <#{DRAFTS}|support-drafts>", ADMIN)
    for text in [*PUBLIC_ASKS, "Do you sell hardware barcode scanners?"]:
        ts = bot.slack.post("CSUP", ASKER, text)
        await bot.send.event({"type": "message", "channel_type": "channel", "channel": "CSUP", "user": ASKER,
                              "text": text, "ts": ts, "event_ts": ts})
    for text in PRIVATE_ASKS:
        ts = bot.slack.post(PRIVATE, ASKER, f"<@UFTBOT> {text}")
        await bot.send.event({"type": "app_mention", "user": ASKER, "text": f"<@UFTBOT> {text}", "ts": ts,
                              "channel": PRIVATE, "event_ts": ts})
    await bot.slack.wait_for(lambda: len(finished_cards(bot)) == 4)
    await settled(bot)
    assert all(d.declined for d in drafts_of(store))
    return bot


async def test_ft_gaps_lists_the_gap_and_hides_a_private_channel_from_a_public_viewer(gaps_bot):
    bot = gaps_bot
    reply = await command_reply(bot, "gaps", AGENT)  # the support team: agents too
    shown = json.dumps(reply["blocks"], ensure_ascii=False)
    assert "1 knowledge gap since" in reply["text"] and "*3 questions* in <#CSUP> · 3 still waiting" in shown
    assert all(ask in shown for ask in PUBLIC_ASKS) and "No approved answer comes close." in shown
    assert PRIVATE not in shown and not any(ask in shown for ask in PRIVATE_ASKS)
    assert "scanners" not in shown  # asked once: no gap
    assert len(_write_buttons(reply)) == 1

    before = len(bot.slack.responses)
    status, body = await bot.send.command("gaps", CURATOR, channel=PRIVATE)  # in the private channel: its questions
    assert status == 200 and not body
    reply = await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])
    shown = json.dumps(reply["blocks"], ensure_ascii=False)
    assert "*5 questions* in <#CSUP>, <#GPRIVATE>" in shown and PRIVATE_ASKS[0] in json.dumps(reply)

    assert "Only agents, curators and admins" in await command_text(bot, "gaps", OTHER)
    one_line = (await command_reply(bot, "gaps soon", CURATOR))["text"]
    assert one_line == "`soon` is not a time: write 7d, 24h, 30m, or a date such as 2026-11-01."
    assert (await command_reply(bot, "gaps 2099-01-01", CURATOR))["text"].startswith("No knowledge gaps since")
    assert "at most one time" in await command_text(bot, "gaps 7d 24h", CURATOR)


async def test_the_weekly_digest_posts_once_to_the_curators_channel(gaps_bot, store):
    bot = gaps_bot
    digest = GapsDigest(bot.deps, bot.app.client)
    ts = await digest.tick()
    [posted] = [m for m in bot.slack.messages[CURATORS] if m.get("bot_id")]
    assert ts == posted["ts"] and "Knowledge gaps this week" in json.dumps(posted["blocks"])
    shown = bot.slack.shown(posted) + json.dumps(posted["blocks"], ensure_ascii=False)
    assert "*3 questions* in <#CSUP>" in shown and PRIVATE not in shown  # scoped as the curators' (public) channel
    assert _write_buttons(posted)

    assert await digest.tick() is None  # the same week again
    assert await GapsDigest(bot.deps, bot.app.client).tick() is None  # a restarted bot: the week is recorded
    next_week = utcnow() + timedelta(days=7)
    assert await digest.tick(now=next_week) == ""  # nothing asked in that window: no post, the week recorded
    assert await digest.tick(now=next_week) is None
    assert len([m for m in bot.slack.messages[CURATORS] if m.get("bot_id")]) == 1
    with store.session() as s:
        weeks = {(d.ts, d.gaps, d.questions) for d in s.exec(select(GapDigest))}
    assert weeks == {(ts, 1, 3), ("", 0, 0)}


async def test_a_curator_writes_the_answer_and_the_waiting_drafts_are_offered_it(gaps_bot, store):
    bot = gaps_bot
    [value] = _write_buttons(await command_reply(bot, "gaps", CURATOR))
    old_cards = {m["ts"] for m in finished_cards(bot)}
    status, body = await bot.send.action(CURATOR, "gap_write", value)
    assert status == 200 and not body
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    view = form["view"]
    prefilled = next(b["element"]["initial_value"] for b in view["blocks"] if b.get("block_id") == "question")
    assert view["callback_id"] == "gap_write_modal" and prefilled in PUBLIC_ASKS
    assert all(ask in json.dumps(view, ensure_ascii=False) for ask in PUBLIC_ASKS)

    status, body = await bot.send.view_submission(CURATOR, "gap_write_modal", _form_values(prefilled, ANSWER),
                                                  private_metadata=view["private_metadata"])
    assert status == 200 and not body
    new_cards = await bot.slack.wait_for(lambda: (lambda c: len(c) == 3 and c)(
        [m for m in finished_cards(bot) if m["ts"] not in old_cards]))
    assert all(ANSWER.split(";")[0] in bot.slack.shown(c) and "draft_send" in buttons(c) for c in new_cards)
    [ex] = _examples(store)
    assert (ex.status, ex.approved_by, ex.question, ex.answer) == (ExampleStatus.APPROVED, CURATOR, prefilled, ANSWER)
    assert (ex.audience, ex.channel_id) == (ChannelKind.PUBLIC, None)  # every question came from a public channel
    # The store follows what Slack shows (each draft's new card is recorded after Slack answered the post).
    drafts = await bot.slack.wait_for(lambda: (lambda ds: ds if not {d.card_ts for d in ds} & old_cards else None)(
        [d for d in drafts_of(store) if d.question in PUBLIC_ASKS]))
    assert {d.written_by for d in drafts} == {CURATOR}
    with store.session() as s:  # the curators' queue no longer waits on them
        assert {s.get(Feedback, d.feedback_id).example_id for d in drafts} == {ex.id}
    dm = await bot.slack.wait_for(lambda: [m for m in bot.slack.messages[CURATOR] if "approved example" in
                                           (m.get("text") or "")])
    assert f"Offered as a draft to 3 waiting questions: see <#{DRAFTS}>" in dm[0]["text"]
    updated = await bot.slack.wait_for(lambda: (lambda u: u if len(u & old_cards) == 3 else None)(
        {u["ts"] for u in bot.slack.calls_to("chat.update") if "knowledge gap" in u.get("text", "")}))
    assert len(updated & old_cards) == 3 and len(drafts) == 3

    # An agent sends one offered draft as it is: the customer's thread gets the written answer.
    card = json.loads(json.dumps(new_cards[0]))  # as the agent saw it (the fake Slack updates its copy in place)
    draft_id = buttons(card)["draft_send"]
    await bot.send.action(AGENT, "draft_send", draft_id, channel=DRAFTS, message=card)
    draft = next(d for d in drafts_of(store) if str(d.id) == draft_id)
    [sent] = await bot.slack.wait_for(lambda: [p for p in bot.slack.calls_to("chat.postMessage")
                                               if p["channel"] == "CSUP" and p.get("thread_ts") == draft.question_ts])
    assert ANSWER.split(";")[0] in sent["text"]
    await settled(bot)
    draft = next(d for d in drafts_of(store) if d.id == draft.id)
    assert (draft.status, draft.edit_chars) == (DraftStatus.EDITED, 0)  # the team's answer, not the model's draft
    with store.session() as s:
        assert list(s.exec(select(Preference))) == []  # two people's texts are no preference


async def test_an_agents_answer_for_a_private_gap_is_a_candidate_of_that_channel_offered_only_there(gaps_bot, store):
    bot = gaps_bot
    before = len(bot.slack.responses)
    await bot.send.command("gaps", AGENT, channel=PRIVATE)
    reply = await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])
    [value] = _write_buttons(reply)
    await bot.send.action(AGENT, "gap_write", value, channel=PRIVATE)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    cards_before = len(finished_cards(bot))
    status, body = await bot.send.view_submission(AGENT, "gap_write_modal", _form_values(
        "How do I export invoices to PDF?", ANSWER), private_metadata=form["view"]["private_metadata"])
    assert status == 200 and not body
    await bot.slack.wait_for(lambda: [m for m in bot.slack.messages[AGENT] if "candidate" in (m.get("text") or "")])
    await settled(bot)
    [ex] = _examples(store)
    assert (ex.status, ex.approved_by, ex.labelled_by) == (ExampleStatus.CANDIDATE, None, AGENT)
    assert (ex.channel_id, ex.audience) == (PRIVATE, ChannelKind.PRIVATE)  # used in the private channel only
    assert len(finished_cards(bot)) == cards_before  # the public channel's drafts are not offered a private answer
    assert all(d.written_by is None for d in drafts_of(store))
    with store.session() as s:  # a candidate answers nothing in the curators' queue yet
        assert all(fb.example_id is None for fb in s.exec(select(Feedback)))


async def test_others_are_refused_and_a_bad_answer_keeps_the_form_open(gaps_bot, store):
    bot = gaps_bot
    [value] = _write_buttons(await command_reply(bot, "gaps", CURATOR))
    before = len(bot.slack.responses)
    await bot.send.action(OTHER, "gap_write", value)
    refusal = await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])
    assert refusal["response_type"] == "ephemeral" and refusal["text"].startswith("Only the support team")
    await settled(bot)
    assert not bot.slack.calls_to("views.open")

    await bot.send.action(CURATOR, "gap_write", value)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    meta = form["view"]["private_metadata"]
    for user, values, field in ((CURATOR, _form_values(PUBLIC_ASKS[0], "  "), "answer"),
                                (CURATOR, _form_values(PUBLIC_ASKS[0], "x" * 3001), "answer"),
                                (CURATOR, _form_values("", ANSWER), "question"),
                                (OTHER, _form_values(PUBLIC_ASKS[0], ANSWER), "answer")):
        status, body = await bot.send.view_submission(user, "gap_write_modal", values, private_metadata=meta)
        reply = json.loads(body)
        assert status == 200 and reply["response_action"] == "errors" and field in reply["errors"], (user, body)
    status, body = await bot.send.view_submission(CURATOR, "gap_write_modal", _form_values(PUBLIC_ASKS[0], ANSWER),
                                                  private_metadata="{not json")
    assert json.loads(body)["response_action"] == "errors"
    await settled(bot)
    assert _examples(store) == [] and all(d.written_by is None for d in drafts_of(store))


async def test_app_home_shows_curators_the_weeks_gaps(gaps_bot):
    bot = gaps_bot

    async def opened(user):
        """The views published for `user` after they open the Home tab, as JSON text."""
        before = len(bot.slack.calls_to("views.publish"))
        await bot.send.event({"type": "app_home_opened", "user": user, "channel": "DHOME", "tab": "home",
                              "event_ts": "1.0"})
        await settled(bot)
        published = bot.slack.calls_to("views.publish")[before:]
        return [json.dumps(c["view"]["blocks"], ensure_ascii=False) for c in published if c["user_id"] == user]

    first, found = await opened(CURATOR)  # at once, then again once the gaps are found
    assert "Grouping this week" in first and "*3 questions* in <#CSUP>" in found and PRIVATE not in found
    [again] = await opened(CURATOR)  # found lately: shown at once
    assert "*3 questions* in <#CSUP>" in again
    [other] = await opened(OTHER)
    assert "Knowledge gaps" not in other
