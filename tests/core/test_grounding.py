"""The decision to send an answer or say "I don't know" (core.grounding), on the cases a support team meets."""

from __future__ import annotations

from core.grounding import declines, judge

TRIAL = ("The free trial lasts 21 days, no card needed.", 0.71)
SOLO = ("Solo allows 25 active clients; Studio has no cap.", 0.55)
STUDIO_PRICE = ("Studio costs €24 a month, billed monthly.", 0.47)


def test_an_answer_stating_what_the_best_pair_states_is_sent():
    verdict = judge("How long is the trial?", "The trial lasts 21 days.", [TRIAL, SOLO])
    assert (verdict.send, verdict.reason, verdict.source_rank, verdict.items) == (True, "grounded", 1, ["#21"])


def test_an_invented_number_is_not_sent_and_says_which():
    verdict = judge("How long is the trial?", "The trial lasts 30 days.", [TRIAL, SOLO])
    assert (verdict.send, verdict.reason, verdict.unsupported) == (False, "unsupported", ["#30"])


def test_a_neighbours_fact_from_a_far_pair_is_held_back_by_the_gap():
    question, answer = "How much is Solo a month?", "Solo costs €24 a month."
    assert judge(question, answer, [SOLO, STUDIO_PRICE], min_score=0.4, max_gap=1.0).send  # 0.47 is close enough
    verdict = judge(question, answer, [SOLO, STUDIO_PRICE], min_score=0.4, max_gap=0.05)
    assert (verdict.send, verdict.reason, verdict.source_rank) == (False, "far_from_best", 2)
    verdict = judge(question, answer, [SOLO, STUDIO_PRICE], min_score=0.5, max_gap=1.0)
    assert (verdict.send, verdict.reason) == (False, "weak_source")


def test_nothing_retrieved_or_the_model_refusing_means_i_dont_know():
    assert judge("Do you sell scanners?", "Yes, the QS-100.", []).reason == "no_context"
    assert judge("Do you sell scanners?", "We don't know: none of our approved answers covers this.",
                 [TRIAL]).reason == "model_declined"
    assert declines("I don’t know.") and declines("") and not declines("I know: 21 days.")


def test_an_answer_without_numbers_or_codes_is_backed_by_its_names_or_its_words():
    reconnect = ("QM-E42 means the bank link expired: open Settings and press Reconnect.", 0.66)
    assert judge("My bank says QM-E42", "Open Settings and press Reconnect.", [reconnect]).send
    assert not judge("My bank says QM-E42", "Open Billing and press Refresh.", [reconnect]).send


def test_an_echo_of_the_prompts_shape_is_not_part_of_the_answer():
    from core.prompt import without_echo

    assert without_echo("A: Up to 6 passengers per booking.") == "Up to 6 passengers per booking."
    assert without_echo("Q: Can I pause my pass?\nA: Once a year, for up to 21 days.") == \
        "Once a year, for up to 21 days."
    assert without_echo("The trial lasts 21 days. A: nothing else") == "The trial lasts 21 days. A: nothing else"
