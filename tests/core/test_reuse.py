"""core.reuse: which approved answer is given as it is, and what is taken off it for the new customer."""

from dataclasses import dataclass

import pytest

from core.contract import REUSE
from core.reuse import cleaned, reusable


@dataclass
class Hit:
    question: str
    answer: str
    score: float


@pytest.mark.parametrize("answer", [
    "Hi Sam, the trial lasts 21 days.",
    "Hi Sam! The trial lasts 21 days.",
    "Hello there! The trial lasts 21 days.",
    "Sorry to hear that, Dara. The trial lasts 21 days.",
    "Thanks Priya! The trial lasts 21 days.",
    "Thanks, Priya! The trial lasts 21 days. Hope that helps!",
    "Dara, the trial lasts 21 days.",
    "The trial lasts 21 days. Cheers, Anna",
    "The trial lasts 21 days. Let me know if anything else comes up!",
    "Sorry, I mixed that up — the trial lasts 21 days.",
    "Good catch, I was wrong: the trial lasts 21 days.",
    "Thanks for catching that! Correction: the trial lasts 21 days.",
    "The trial lasts 21 days.",
])
def test_greetings_thanks_apologies_sign_offs_and_the_names_they_address_are_taken_off(answer):
    assert cleaned(answer) == "The trial lasts 21 days."


@pytest.mark.parametrize("answer, question", [
    ("Log in as <email> and click Reactivate.", ""),  # a redacted detail of the earlier customer
    ("Payouts go to the account on file (<iban>) twice a week.", ""),
    ("<@U123> set it up for you: the trial lasts 21 days.", ""),  # a person mentioned
    ("Ask @sam in billing: the trial lasts 21 days.", ""),
    ("The trial lasts 21 days, and I've extended yours, Dara.", ""),  # a name inside a sentence
    ("QM-2026-00088 was sent more than 72 hours ago, so it is locked.",  # their own invoice number
     "why is the edit button greyed out on invoice QM-2026-00088"),
    ("Hi Sam!", ""),  # nothing but the greeting
])
def test_an_answer_that_cannot_be_cleaned_safely_is_not_reused(answer, question):
    assert cleaned(answer, question) is None
    assert reusable([Hit(question, answer, 0.99)]) is None


@pytest.mark.parametrize("answer, question", [
    ("E42 is our code for an expired bank link.", "the banner says E42"),  # an error code is the product's
    ("Backups are kept in Stockholm, Sweden.", ""),  # a place after a comma is no name addressed
    ("Studio, Agency and Solo include PDF export.", ""),
    ("Recurring invoices are generated at 06:00, and sent right after if auto-send is on.", ""),
    ("Not on Saturdays, sorry! Support runs Monday to Friday.", ""),  # an apology inside stays
])
def test_what_states_the_fact_stays_whole(answer, question):
    assert cleaned(answer, question) == answer


def test_only_the_best_hit_is_reused_and_only_from_the_threshold_up():
    best = Hit("How long is the trial?", "Hi Sam, the trial lasts 21 days.", REUSE.min_score)
    other = Hit("How long is the trial?", "The trial lasts 30 days.", REUSE.min_score)
    chosen = reusable([best, other])
    assert chosen.hit is best and chosen.text == "The trial lasts 21 days."
    assert reusable([Hit(best.question, best.answer, REUSE.min_score - 0.01), other]) is None
    assert reusable([best], min_score=0.9) is None and reusable([best], min_score=0.5).hit is best
    # The best hit cannot be cleaned: no neighbour's answer takes its place.
    assert reusable([Hit("Reset?", "Sent to <email>.", 0.95), Hit("Reset?", "Links last 20 minutes.", 0.94)]) is None
    assert reusable([]) is None and reusable(None) is None
