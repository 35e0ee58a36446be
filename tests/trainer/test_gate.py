"""The gate's written rule: SFT + preference is kept only when it loses to SFT alone on nothing measured."""

from __future__ import annotations

import pytest

from core.contract import LiveOutcomes, Outcomes, RetrievalScores, Scores
from trainer.gate import decide


def _scores(right=5, wrong=2, key_fact=0.6, probe=0.75, sent=True, retrieval=True) -> Scores:
    return Scores(key_fact=0.3, probe=probe,
                  with_retrieval=RetrievalScores(key_fact=key_fact) if retrieval else None,
                  sent=Outcomes(n=10, right=right, wrong=wrong, dont_know=10 - right - wrong) if sent else None)


def _live(agrees=4, other=1) -> LiveOutcomes:
    return LiveOutcomes(agrees=agrees, other=other, declined=5 - agrees - other + 2, unchecked=0)


SFT, SFT_LIVE = _scores(), _live()


def test_equal_on_everything_is_kept_a_tie_is_no_loss():
    kept, reason = decide(SFT, _scores(), SFT_LIVE, _live())
    assert kept and reason.startswith("kept:")
    assert "held-out right answers sent 5 → 5" in reason and "forgetting probe 75% → 75%" in reason


def test_better_everywhere_is_kept():
    kept, reason = decide(SFT, _scores(right=7, wrong=1, key_fact=0.7, probe=0.83), SFT_LIVE, _live(agrees=5, other=0))
    assert kept and "held-out right answers sent 5 → 7" in reason
    assert "live answers stating something else 1 → 0" in reason


@pytest.mark.parametrize("preferred, preferred_live, named", [
    (_scores(right=4), _live(), "held-out right answers sent 5 → 4"),
    (_scores(wrong=3), _live(), "held-out wrong answers sent 2 → 3"),
    (_scores(key_fact=0.55), _live(), "held-out key fact with retrieval 60% → 55%"),
    (_scores(probe=0.67), _live(), "forgetting probe 75% → 67%"),
    (_scores(), _live(agrees=3), "live answers agreeing with the team 4 → 3"),
    (_scores(), _live(other=2), "live answers stating something else 1 → 2"),
])
def test_each_criterion_alone_drops_the_stage_and_is_named(preferred, preferred_live, named):
    kept, reason = decide(SFT, preferred, SFT_LIVE, preferred_live)
    assert not kept
    assert reason == f"dropped: SFT + preference lost to SFT alone on {named}"


def test_a_gain_elsewhere_does_not_buy_a_loss():
    kept, reason = decide(SFT, _scores(right=9, wrong=0, key_fact=0.9, probe=0.5), SFT_LIVE, _live(agrees=5))
    assert not kept and reason.endswith("on forgetting probe 75% → 50%")


def test_several_losses_are_all_named_in_one_sentence():
    kept, reason = decide(SFT, _scores(right=4, probe=0.5), SFT_LIVE, _live(other=3))
    assert not kept and reason.count(".") == 0
    assert reason == ("dropped: SFT + preference lost to SFT alone on held-out right answers sent 5 → 4, forgetting "
                      "probe 75% → 50% and live answers stating something else 1 → 3")


def test_rounding_noise_is_a_tie():
    assert decide(_scores(probe=0.6667), _scores(probe=0.6667 + 1e-12))[0]


def test_measured_for_neither_is_not_compared_and_said():
    # Retrieval off (no "sent", no key fact with retrieval) and no live questions: the probe alone is compared.
    plain = _scores(sent=False, retrieval=False)
    kept, reason = decide(plain, _scores(sent=False, retrieval=False), None, None)
    assert kept and "forgetting probe 75% → 75%" in reason and "measured for neither" in reason
    assert "live answers agreeing with the team" in reason
    assert not decide(plain, _scores(sent=False, retrieval=False, probe=0.5), None, None)[0]


@pytest.mark.parametrize("sft, preferred, sft_live, preferred_live, named", [
    (SFT, _scores(sent=False), SFT_LIVE, _live(), "held-out right answers sent was measured for SFT alone only"),
    (SFT, _scores(), SFT_LIVE, None, "live answers agreeing with the team was measured for SFT alone only"),
    (SFT, _scores(), None, _live(), "live answers agreeing with the team was measured for SFT + preference only"),
    (SFT, None, SFT_LIVE, _live(), "forgetting probe was measured for SFT alone only"),
])
def test_measured_for_one_side_only_drops_it(sft, preferred, sft_live, preferred_live, named):
    kept, reason = decide(sft, preferred, sft_live, preferred_live)
    assert not kept and named in reason and reason.endswith("so a loss there cannot be ruled out")


def test_nothing_measured_at_all_drops_it():
    assert decide(None, None, None, None) == (False, "dropped: nothing was measured for both SFT alone and "
                                                     "SFT + preference")
    assert not decide(Scores(), Scores())[0]  # probe None on both: nothing compared
