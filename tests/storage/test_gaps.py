"""Knowledge gaps: which questions count as unanswered, who may see them, and how paraphrases are grouped (with the
real embedder, as the bot runs it)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.embedder import Embedder, EmbedderError
from core.states import ChannelKind, ChannelMode, DiscardReason, DraftStatus, GapKind, Rating
from serving.retrieval import Retriever
from storage import audience, drafts, feedback, gaps
from storage.examples import NewExample, add_examples
from storage.models import Draft, Feedback, utcnow

PUBLIC, PRIVATE = "CPUBLIC1", "GPRIVATE1"
WEEK = timedelta(days=7)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    try:
        return Embedder()
    except EmbedderError as exc:
        pytest.skip(str(exc))


def draft(s, question: str, ts: str, *, channel: str = PUBLIC, mode: str = ChannelMode.DRAFT,
          status: str = DraftStatus.PENDING, declined: bool = False, answer: str = "Yes, in Settings.",
          asked_days_ago: float = 0, asker: str = "UASKER") -> Draft:
    """A watched channel's question as the bot stores it: the Draft row and its Feedback row."""
    row = drafts.open_draft(s, mode=mode, channel_id=channel, question_ts=ts, asker=asker, question=question,
                            asked_at=utcnow() - timedelta(days=asked_days_ago))
    fb = feedback.record(s, question=question, answer="" if declined else answer, user=asker, version_name=None,
                         source={"channel": channel, "thread_ts": ts, "ts": ts, "draft_id": row.id, "mode": mode},
                         declined=declined)
    return drafts.record_answer(s, row.id, status=status, answer="" if declined else answer, model_answer=answer,
                                declined=declined, grounding={}, context=[], prompt=[], version_name=None,
                                model="m", feedback_id=fb.id)


def asked(s, question: str, *, channel: str | None = PUBLIC, thread_ts: str | None = None, declined: bool = True,
          user: str = "UASKER", answer: str = "") -> Feedback:
    """A question asked outside a watched channel (a mention, a DM): its Feedback row."""
    return feedback.record(s, question=question, answer=answer, user=user, version_name=None,
                           source={"channel": channel, "thread_ts": thread_ts}, declined=declined)


def by_ref(found: list[gaps.GapQuestion]) -> dict[str, gaps.GapQuestion]:
    return {q.ref: q for q in found}


def test_each_kind_of_unanswered_question_counts_and_answered_ones_are_not_open(store):
    with store.session() as s:
        audience.remember(s, PUBLIC, ChannelKind.PUBLIC, "help")
        declined = draft(s, "Can I pay by PayPal?", "1.1", declined=True)
        handed = draft(s, "Do you sell gift cards?", "1.2", mode=ChannelMode.AUTO, status=DraftStatus.HANDED_OFF,
                       declined=True)
        wrong = draft(s, "Is there a Linux app?", "1.3")
        outdated = draft(s, "What does the Pro plan cost?", "1.4")
        rated = draft(s, "How do I export to CSV?", "1.5", mode=ChannelMode.AUTO, status=DraftStatus.ANSWERED)
        not_a_question = draft(s, "thanks all", "1.6", declined=True)
        failed = draft(s, "Is the API rate limited?", "1.7", status=DraftStatus.FAILED, declined=True)
        fine = draft(s, "How long is the trial?", "1.8")
        old = draft(s, "Is there a Windows app?", "1.9", declined=True, asked_days_ago=8)
        for row, reason in ((wrong, DiscardReason.WRONG), (outdated, DiscardReason.OUTDATED),
                            (not_a_question, DiscardReason.NOT_A_QUESTION)):
            drafts.discard(s, row.id, "UAGENT", reason)
        feedback.rate(s, rated.feedback_id, Rating.DOWN, "UASKER")
        mention = asked(s, "Can I merge two workspaces?", thread_ts="2.1")
        disliked = asked(s, "Do you have SSO?", declined=False, answer="Yes.", thread_ts="2.2")
        feedback.rate(s, disliked.id, Rating.DOWN, "UASKER")
        set_aside = asked(s, "hello?", thread_ts="2.3")
        feedback.dismiss(s, set_aside.id, "UCURATOR")
        rated_up = asked(s, "Where are invoices?", declined=False, answer="Billing.", thread_ts="2.4")
        feedback.rate(s, rated_up.id, Rating.UP, "UASKER")
        ids = {k: v.id for k, v in locals().items() if isinstance(v, (Draft, Feedback))}

    with store.session() as s:
        found = by_ref(gaps.unanswered(s, utcnow() - WEEK))
    kinds = {ref: q.kind for ref, q in found.items()}
    assert kinds == {
        f"draft:{ids['declined']}": GapKind.DECLINED, f"draft:{ids['handed']}": GapKind.HANDED_OFF,
        f"draft:{ids['wrong']}": GapKind.DISCARDED_WRONG, f"draft:{ids['outdated']}": GapKind.DISCARDED_OUTDATED,
        f"draft:{ids['rated']}": GapKind.RATED_DOWN, f"feedback:{ids['mention']}": GapKind.DECLINED,
        f"feedback:{ids['disliked']}": GapKind.RATED_DOWN}  # a draft's Feedback row is not a second question
    assert all(q.open for q in found.values())
    q = found[f"draft:{ids['handed']}"]
    assert (q.channel_id, q.audience, q.draft_id, q.question) == (PUBLIC, ChannelKind.PUBLIC, ids["handed"],
                                                                   "Do you sell gift cards?")
    assert not {f"draft:{ids[k]}" for k in ("not_a_question", "failed", "fine", "old")} & set(found)

    # People answer: an agent sends the handed-off question's answer, a teammate replies by hand to the declined
    # draft's thread, a curator answers the mention from the queue, the 👎 gets a correction.
    with store.session() as s:
        drafts.claim(s, ids["handed"], "UAGENT")
        drafts.sent(s, ids["handed"], text="No gift cards yet.", sent_ts="1.21", by="UAGENT", curator=False)
        drafts.answered_by_hand(s, PUBLIC, "1.1", by="UAGENT", text="Cards only, sorry.", reply_ts="1.11")
        feedback.answer(s, ids["mention"], "Not yet.", "UCURATOR")
        feedback.correct(s, ids["disliked"], "Only on the Business plan.", "UASKER")
    with store.session() as s:
        found = by_ref(gaps.unanswered(s, utcnow() - WEEK))
    closed = {f"draft:{ids['handed']}", f"draft:{ids['declined']}", f"feedback:{ids['mention']}",
              f"feedback:{ids['disliked']}"}
    assert {ref for ref, q in found.items() if not q.open} == closed  # still gaps: the bot could not answer them
    assert len(found) == 7


def test_the_same_question_twice_in_a_thread_counts_once(store):
    with store.session() as s:
        first = asked(s, "Can I pay by PayPal?", thread_ts="5.1")
        again = asked(s, "can I pay by PayPal", thread_ts="5.1")  # asked again after "I don't know"
        elsewhere = asked(s, "Can I pay by PayPal?", thread_ts="6.1")  # another customer, another thread
        dm = asked(s, "Can I pay by PayPal?", channel=None)  # no thread to tell: kept
    with store.session() as s:
        refs = [q.ref for q in gaps.unanswered(s, utcnow() - WEEK)]
    assert f"feedback:{first.id}" not in refs
    assert sorted(refs) == sorted(f"feedback:{i}" for i in (again.id, elsewhere.id, dm.id))


PAYPAL = ["Can I pay with PayPal?", "Do you accept PayPal payments?", "Is PayPal supported as a payment method?"]
LINUX = ["Is there a Linux app?", "Do you have a Linux version of the app?", "Can I install the app on Linux?"]
EXPORT = ["How do I export my notes to PDF?", "Can I download a note as a PDF file?"]


def test_paraphrases_group_into_gaps_largest_first_with_the_nearest_approved_pair(store, embedder):
    with store.session() as s:
        audience.remember(s, PUBLIC, ChannelKind.PUBLIC, "help")
        for i, text in enumerate(PAYPAL + LINUX + EXPORT):
            asked(s, text, thread_ts=f"7.{i}", user=f"U{i}")
        asked(s, "What is your office address in Berlin?", thread_ts="7.99")  # alone: no gap
        add_examples(s, [NewExample(source_key="slack:CPUBLIC1:1", question="Which payment methods do you accept?",
                                    answer="Visa, Mastercard and bank transfer.", status="approved",
                                    channel_id=PUBLIC, audience=ChannelKind.PUBLIC)])
    Retriever(store, embedder).sync()  # the retrieval index's stored rows: what the nearest pair is read from

    with store.session() as s:
        found = gaps.find_gaps(s, embedder, since=utcnow() - WEEK)
    assert sorted(sorted(q.question for q in g.questions) for g in found) == sorted(
        [sorted(PAYPAL), sorted(LINUX), sorted(EXPORT)])
    assert [g.size for g in found] == [3, 3, 2]  # largest first; of two as large, the newest first
    assert found[0].questions[0].question == LINUX[-1]
    paypal = next(g for g in found if PAYPAL[0] in g.examples)
    assert (paypal.size, paypal.channels, len(paypal.examples), len(paypal.open_questions)) == (3, [PUBLIC], 3, 3)
    assert paypal.examples == [q.question for q in paypal.questions]  # newest first
    assert paypal.nearest.question == "Which payment methods do you accept?" and 0 < paypal.nearest.score < 1
    assert paypal.key == gaps.gap_key(q.ref for q in paypal.questions)
    with store.session() as s:
        again = gaps.find_gaps(s, embedder, since=utcnow() - WEEK)
        fewer = gaps.find_gaps(s, embedder, since=utcnow() - WEEK, min_size=3)
    assert [g.key for g in again] == [g.key for g in found]  # stable
    assert [g.size for g in fewer] == [3, 3]


def test_a_private_channels_questions_and_pairs_are_seen_only_there(store, embedder):
    with store.session() as s:
        audience.remember(s, PUBLIC, ChannelKind.PUBLIC, "help")
        audience.remember(s, PRIVATE, ChannelKind.PRIVATE, "acme-support")
        for i, text in enumerate(PAYPAL):
            draft(s, text, f"8.{i}", channel=PRIVATE, declined=True, asker=f"U{i}")
        for i, text in enumerate(LINUX):
            asked(s, text, thread_ts=f"9.{i}", user=f"U{i}")
        add_examples(s, [NewExample(source_key="slack:GPRIVATE1:1", question="Do you take PayPal?",
                                    answer="Acme pays by invoice.", status="approved", channel_id=PRIVATE,
                                    audience=ChannelKind.PRIVATE)])
    Retriever(store, embedder).sync()

    with store.session() as s:
        everywhere = gaps.find_gaps(s, embedder, since=utcnow() - WEEK)
        there = gaps.find_gaps(s, embedder, since=utcnow() - WEEK, scope=audience.scope(s, PRIVATE))
        other = gaps.find_gaps(s, embedder, since=utcnow() - WEEK, scope=audience.scope(s, "COTHER1"))
    assert [g.channels for g in everywhere] == [[PUBLIC]]
    assert everywhere[0].nearest is None  # the only approved pair is the private channel's
    assert [g.channels for g in other] == [[PUBLIC]]
    assert sorted(g.channels[0] for g in there) == sorted([PRIVATE, PUBLIC])
    private = next(g for g in there if g.channels == [PRIVATE])
    assert {q.audience for q in private.questions} == {ChannelKind.PRIVATE}
    assert private.nearest.answer == "Acme pays by invoice."
    with store.session() as s:  # an admin marks the channel's knowledge shareable: retrieval's rule, applied here
        audience.set_shareable(s, PRIVATE, True, "UADMIN")
    with store.session() as s:
        assert len(gaps.find_gaps(s, embedder, since=utcnow() - WEEK)) == 2


def test_nothing_unanswered_is_no_gap(store, embedder):
    with store.session() as s:
        audience.remember(s, PUBLIC, ChannelKind.PUBLIC, "help")
        asked(s, "Where are my invoices?", declined=False, answer="Billing.")
        assert gaps.find_gaps(s, embedder, since=utcnow() - WEEK) == []
        asked(s, "Can I pay with PayPal?")
        assert gaps.find_gaps(s, embedder, since=utcnow() - WEEK) == []  # one question is no gap
        assert [g.size for g in gaps.find_gaps(s, embedder, since=utcnow() - WEEK, min_size=1)] == [1]


def test_scikit_learn_loads_only_when_gaps_are_clustered():
    """About 105 MiB in the bot's process (bench/gaps.py): the bot and the CLI start without it."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, bot.app, ftbot.cli.main, storage.gaps; print(sorted({'sklearn', 'scipy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
