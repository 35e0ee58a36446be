"""The deployment smoke test's parity rule, asked of the real embedded server (serving.smoke)."""

from __future__ import annotations

from core.contract import Sample
from core.prompt import prompt_messages
from serving.client import ModelClient
from serving.smoke import agrees, smoke_test

SYSTEM = "You are the support assistant."
QUESTIONS = ["How long does the free trial last?", "Can I export my invoices as PDF?", "How do I reset my password?",
             "Which plans do you offer?", "Where do I change the invoice address?"]
OTHER = "Something it never said at all, not even close to it"


def test_an_answer_agrees_when_equal_or_the_same_first_words():
    first = "one two three four five six seven eight nine ten eleven twelve"
    assert agrees(first + " thirteen", first + " fourteen")  # a late near-tie flip
    assert agrees("Yes, open Billing.", "Yes, open Billing.") and agrees("Yes, open", "Yes, open Billing.")
    assert not agrees("", "Yes")


def test_a_reworded_answer_agrees_when_it_keeps_the_words_and_the_numbers():
    # Both seen from vLLM (bf16) against the fp32 evaluation of the same version.
    served = "Solo is capped at 25 active clients, so you'd need to archive an inactive client first or move to Studio"
    expected = ("Solo covers up to 25 active clients, so you'd need to archive an inactive client first "
                "or move to Studio")
    assert agrees(served, expected)
    assert not agrees(served.replace("25", "50"), expected)  # another number is another answer
    assert not agrees("Quillmate is getting more expensive next month, so you should keep your subscription paid "
                      "for a year.", "Quillmate is getting more expensive next month. I've kept your question so "
                      "the support team can follow up.")


async def test_a_version_passes_when_most_answers_match_its_evaluation(server, tiny):
    client = ModelClient(server.url)
    try:
        await client.load_adapter("support-v1", str(tiny["a1"]))
        served = [await client.chat("support-v1", prompt_messages(SYSTEM, q), max_tokens=12, temperature=0.0)
                  for q in QUESTIONS]

        def samples(wrong: int) -> list[Sample]:  # the evaluation's record, `wrong` answers replaced
            return [Sample(question=q, new=OTHER if i < wrong else a)
                    for i, (q, a) in enumerate(zip(QUESTIONS, served))]

        result = await smoke_test(client, "support-v1", samples(0), system_prompt=SYSTEM, max_tokens=12)
        assert (result.ok, result.checked, result.matched) == (True, 5, 5)
        # Two of five flipped (bf16 rounding flips about 8 % of answers): still the evaluated model.
        result = await smoke_test(client, "support-v1", samples(2), system_prompt=SYSTEM, max_tokens=12)
        assert (result.ok, result.matched) == (True, 3)
        # Three of five: not a majority, so not the model that was evaluated.
        result = await smoke_test(client, "support-v1", samples(3), system_prompt=SYSTEM, max_tokens=12)
        assert (result.ok, result.matched) == (False, 2)
        assert result.problem.startswith("2 of 5 answers matched the evaluation; support-v1 answered")
        # The base model in the adapter's place matches none of it.
        base = await client.base_model()
        result = await smoke_test(client, base, samples(0), system_prompt=SYSTEM, max_tokens=12)
        assert not result.ok and result.matched < 3
        # One recorded answer: it must match.
        result = await smoke_test(client, "support-v1", samples(1)[:1], system_prompt=SYSTEM, max_tokens=12)
        assert not result.ok and result.checked == 1
    finally:
        await client.close()
