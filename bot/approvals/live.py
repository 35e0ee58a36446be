"""The approval request's live evaluation (trainer.live): the deployed version and the new one on the newest
questions the team answered, beside the held-out figures."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks import context, escape, section
from core.contract import LiveEval, LiveExample
from core.states import LiveOutcome
from core.text import clip

WORDS = {LiveOutcome.AGREES: "agrees", LiveOutcome.OTHER: "states something else", LiveOutcome.DECLINED: "declined",
         LiveOutcome.UNCHECKED: "not comparable"}


def live_table(live: LiveEval) -> str:
    if not live.n or live.new is None:
        return ("*Live questions:* no live questions yet (none of the questions in watched public or shareable "
                "channels has an answer the team sent).")
    sides = [(f"deployed {live.deployed_name}" if live.deployed_name else "base model", live.deployed),
             ("new", live.new)]
    sides = [(label, o) for label, o in sides if o is not None]
    unchecked = any(o.unchecked for _, o in sides)
    head = f"{'live questions':22}{'agrees':>8}{'other':>8}{'declined':>10}" + (f"{'n/a':>6}" if unchecked else "")
    lines = [head]
    for label, o in sides:
        lines.append(f"{clip(label, 21):22}{o.agrees:>5}/{live.n:<2}{o.other:>5}/{live.n:<2}{o.declined:>7}/{live.n:<2}"
                     + (f"{o.unchecked:>6}" if unchecked else ""))
    trained = (f" The new version was trained on the team's answer to {live.n_trained} of them: there it has seen "
               "the answer.") if live.n_trained else ""
    return (f"*Live questions:* the {live.n} newest question(s) the team answered (sent, edited or answered by hand), "
            "asked as the bot asks; nothing was posted.\n```" + "\n".join(lines) + "```\n"
            "_Agrees = what the bot would send states the numbers, codes or names of what the team sent; other = it "
            "states something else; declined = it would say it does not know"
            + ("; n/a = the team's answer has no number, code or name to compare" if unchecked else "")
            + f"._{trained}")


def _example(e: LiveExample, deployed_label: str) -> dict[str, Any]:
    def line(label: str, text: str, outcome: str) -> str:
        return f"*{label}* ({WORDS.get(outcome, outcome)}): {escape(clip(text, 200, one_line=True))}"

    return section("\n".join([f"*Q:* {escape(clip(e.question, 200, one_line=True))}",
                              f"*the team sent:* {escape(clip(e.team, 200, one_line=True))}",
                              line(deployed_label, e.deployed, e.deployed_outcome),
                              line("new", e.new, e.new_outcome)]))


def live_blocks(live: LiveEval, shown: int = 3) -> list[dict[str, Any]]:
    """The table, then a few questions side by side (those where the two differ first)."""
    blocks = [section(live_table(live))]
    examples = live.examples[:shown] if live.n else []
    if examples:
        label = clip(f"deployed {live.deployed_name}" if live.deployed_name else "base model", 60)
        blocks.append(context("What each would send for some live questions:"))
        blocks += [_example(e, escape(label)) for e in examples]
    return blocks
