"""Key facts, ROUGE-L, and grouping the answers that state the same fact."""

from core.facts import carries_key_fact, fact_groups, key_items
from core.overlap import lcs_length, rouge_l_f1
from tests.trainer.conftest import rows
from trainer.data import phrasing_pairs
from trainer.evaluate import probe_hit


def test_key_items_are_numbers_and_codes_the_question_does_not_give():
    assert key_items("The trial lasts 21 days.") == {"#21"}
    assert key_items("Support runs 07:00–19:00 CET.") == {"#7:00", "#19:00"}
    assert key_items("Each extra seat is €6, so 2 extra seats add €12.", "what do 2 extra seats cost?") == {"#6", "#12"}
    assert key_items("QM-E42 means the link expired: Reconnect it under Settings.", "I see QM-E42") == \
        {"$settings"}  # the code is the question's; "Reconnect" starts a clause
    assert key_items("Data is hosted in Helsinki, Finland.") == {"$helsinki", "$finland"}


def test_an_answer_carries_the_fact_with_half_its_items():
    ref = "Reminders go out 3, 10 and 20 days after the due date."
    assert carries_key_fact("We remind them after 3 and 10 days.", ref)
    assert not carries_key_fact("We remind them after 3 days.", ref)
    assert carries_key_fact("It runs every four hours.", "Bank feeds sync every 4 hours.")
    assert carries_key_fact("The code qm-e63 means a bad delimiter.", "QM-E63: use semicolons.")
    assert not carries_key_fact("The trial lasts 14 days.", "The trial lasts 21 days.")
    assert carries_key_fact("anything", "Yes, it does.") is None  # nothing to check
    # A name stated in its plural (or singular) states it; another word that merely starts alike does not.
    payout = "Payouts run every Tuesday and Friday."
    assert carries_key_fact("Payouts go out twice a week, on Tuesdays and Fridays.", payout, "paid on monday")
    assert carries_key_fact("It runs on Tuesday.", "Exports run on Tuesdays and Fridays.")
    assert not carries_key_fact("Payouts run on Tuesdayish days.", payout)


def test_rouge_l():
    assert lcs_length("a b c d".split(), "a c d".split()) == 3
    assert rouge_l_f1("The trial lasts 21 days", "the trial lasts 21 days.") == 1.0
    assert rouge_l_f1("", "x") == 0.0
    assert 0 < rouge_l_f1("trial is 21 days long", "The trial lasts 21 days") < 1
    assert probe_hit("Paris, of course.", ["Paris"]) and not probe_hit("Parish", ["Paris"])


def test_every_phrasing_pairs_questions_with_answers_stating_the_same_fact():
    data = rows()
    groups = fact_groups(data)
    assert groups[0] == [1] and groups[1] == [0]  # both answers: 21 days
    assert groups[6] == [7] and groups[7] == [6]  # both answers: QM-E42
    assert groups[2] == [] and groups[4] == []
    pairs = {(p.question, p.answer) for p in phrasing_pairs(data)}
    assert pairs == {(data[1]["question"], data[0]["answer"]), (data[0]["question"], data[1]["answer"]),
                     (data[7]["question"], data[6]["answer"]), (data[6]["question"], data[7]["answer"])}
