"""The gate after the preference stage: SFT + preference goes forward only when it loses to SFT alone on nothing.

The written rule, over the same held-out questions, forgetting probe and live questions for both adapters:

- held-out, what the bot would send (Scores.sent, asked with retrieval and checked as the bot checks): right answers
  must not fall, wrong answers must not rise;
- held-out, the model asked as the bot asks (Scores.with_retrieval.key_fact): the key-fact share must not fall;
- the forgetting probe (Scores.probe): the share of general questions answered must not fall;
- live evaluation (LiveOutcomes): answers agreeing with what the team sent must not fall, other answers must not rise.

A tie is not a loss: the stage stays when it changes nothing measurable. Missing measurements are explicit:
- measured for neither adapter (retrieval off: no "sent"; no live questions): that line is not compared;
- measured for one and not the other: the stage is dropped, since a loss could hide there;
- nothing compared at all: dropped, as there is no evidence that it does not lose.

Pure: no model, no database; trainer.job applies it and stores the decision in PreferenceStage.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contract import LiveOutcomes, Scores

EPSILON = 1e-9  # shares are rounded floats: a difference below this is a tie


@dataclass(frozen=True)
class Line:
    """One figure of the rule for both adapters."""

    what: str  # how the reason names it
    sft: float | None
    preferred: float | None
    higher_is_better: bool
    share: bool = False  # shown as a percentage, else as a count

    @property
    def measured(self) -> tuple[bool, bool]:
        return self.sft is not None, self.preferred is not None

    def lost(self) -> bool:
        """SFT + preference is worse than SFT alone here (both measured)."""
        assert self.sft is not None and self.preferred is not None
        gain = self.preferred - self.sft
        return gain < -EPSILON if self.higher_is_better else gain > EPSILON

    def shown(self) -> str:
        def fmt(value: float | None) -> str:
            return "–" if value is None else f"{value:.0%}" if self.share else f"{value:g}"

        return f"{self.what} {fmt(self.sft)} → {fmt(self.preferred)}"


def lines(sft: Scores | None, preferred: Scores | None, sft_live: LiveOutcomes | None,
          preferred_live: LiveOutcomes | None) -> list[Line]:
    """The rule's figures, in the order the reason names them."""

    def sent(scores: Scores | None, name: str) -> float | None:
        return getattr(scores.sent, name) if scores is not None and scores.sent is not None else None

    def with_retrieval(scores: Scores | None) -> float | None:
        return scores.with_retrieval.key_fact if scores is not None and scores.with_retrieval is not None else None

    def live(outcomes: LiveOutcomes | None, name: str) -> float | None:
        return getattr(outcomes, name) if outcomes is not None else None

    return [
        Line("held-out right answers sent", sent(sft, "right"), sent(preferred, "right"), True),
        Line("held-out wrong answers sent", sent(sft, "wrong"), sent(preferred, "wrong"), False),
        Line("held-out key fact with retrieval", with_retrieval(sft), with_retrieval(preferred), True, share=True),
        Line("forgetting probe", sft.probe if sft else None, preferred.probe if preferred else None, True, share=True),
        Line("live answers agreeing with the team", live(sft_live, "agrees"), live(preferred_live, "agrees"), True),
        Line("live answers stating something else", live(sft_live, "other"), live(preferred_live, "other"), False),
    ]


def decide(sft: Scores | None, preferred: Scores | None, sft_live: LiveOutcomes | None = None,
           preferred_live: LiveOutcomes | None = None) -> tuple[bool, str]:
    """(kept, one sentence saying why): kept only when SFT + preference loses to SFT alone on none of the rule's
    figures (see the module docstring)."""
    found = lines(sft, preferred, sft_live, preferred_live)
    one_sided = [line for line in found if sum(line.measured) == 1]
    if one_sided:
        return False, ("dropped: " + _join([f"{line.what} was measured for "
                                            f"{'SFT alone' if line.sft is not None else 'SFT + preference'} only"
                                            for line in one_sided]) + ", so a loss there cannot be ruled out")
    compared = [line for line in found if all(line.measured)]
    if not compared:
        return False, "dropped: nothing was measured for both SFT alone and SFT + preference"
    lost = [line for line in compared if line.lost()]
    if lost:
        return False, "dropped: SFT + preference lost to SFT alone on " + _join([line.shown() for line in lost])
    unmeasured = [line.what for line in found if not any(line.measured)]
    return True, ("kept: SFT + preference lost to SFT alone on nothing compared ("
                  + "; ".join(line.shown() for line in compared) + ")"
                  + (f", and {_join(unmeasured)} were measured for neither" if unmeasured else ""))


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
