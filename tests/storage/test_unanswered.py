"""The curators' queue of unanswered questions: what the bot declined and what got a 👎, until a curator answers."""

from __future__ import annotations

from core.states import ExampleStatus, Rating
from storage import feedback
from storage.models import Example


def test_declined_and_downvoted_questions_wait_until_a_curator_answers(store):
    with store.session() as s:
        declined = feedback.record(s, question="Can I pay with PayPal?", answer="", user="U1", version_name="ft-1-v1",
                                   source={"channel": "C1"}, declined=True).id
        answered = feedback.record(s, question="How long is the trial?", answer="21 days.", user="U2",
                                   version_name="ft-1-v1", source={}).id
        disliked = feedback.record(s, question="Is there a Zapier app?", answer="Yes, in Settings.", user="U3",
                                   version_name="ft-1-v1", source={}).id
        feedback.rate(s, disliked, Rating.DOWN, "U3")
        small_talk = feedback.record(s, question="hello?", answer="", user="U4", version_name=None, source={},
                                     declined=True).id
    with store.session() as s:
        assert [r.id for r in feedback.unanswered(s)] == [small_talk, disliked, declined]  # newest first
        assert answered not in [r.id for r in feedback.unanswered(s)]
        feedback.dismiss(s, small_talk, "UCUR")

    with store.session() as s:
        outcome, row, example = feedback.answer(s, declined, "  No: cards and bank transfer only.  ", "UCUR")
    assert outcome == feedback.CREATED
    with store.session() as s:
        ex = s.get(Example, example.id)
        # A curator wrote it: approved at once, so retrieval serves it from the next question on.
        assert (ex.status, ex.question, ex.answer, ex.approved_by) == (
            ExampleStatus.APPROVED, "Can I pay with PayPal?", "No: cards and bank transfer only.", "UCUR")
        assert [r.id for r in feedback.unanswered(s)] == [disliked]


def test_an_answer_to_a_corrected_question_approves_the_correction_candidate(store):
    with store.session() as s:
        fb = feedback.record(s, question="Is there a Zapier app?", answer="Yes.", user="U3", version_name=None,
                             source={}).id
        _, _, candidate = feedback.correct(s, fb, "No Zapier app yet.", "U3")
        assert candidate.status == ExampleStatus.CANDIDATE
    with store.session() as s:
        outcome, _, example = feedback.answer(s, fb, "Not yet: use the webhooks.", "UCUR")
    assert outcome == feedback.UPDATED and example.id == candidate.id
    with store.session() as s:
        ex = s.get(Example, candidate.id)
        assert (ex.status, ex.answer) == (ExampleStatus.APPROVED, "Not yet: use the webhooks.")
