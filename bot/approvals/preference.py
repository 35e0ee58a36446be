"""The approval request's preference stage (trainer.preference, decided by trainer.gate): SFT alone and SFT +
preference side by side on the same held-out questions, forgetting probe and live questions, which one goes
forward and why; or one line saying why the stage did not run."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks import context, escape, section
from core.contract import LiveOutcomes, PreferenceStage, Scores
from core.text import clip

SFT, PREFERRED = "SFT alone", "SFT + preference"
REASON_CHARS = 600  # the gate's sentence; clipped so the section stays far inside Slack's 3,000 characters
SETTINGS_CHARS = 400


def _pct(value: float | None) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "–"


def _share(count: int, n: int) -> str:
    return f"{count}/{n}" if n else "–"


def _row(label: str, forward: bool) -> str:
    return ("→ " if forward else "  ") + label


def held_out_lines(stage: PreferenceStage) -> list[str]:
    """What the bot would send on the held-out questions (right / wrong / don't know), the key fact asked with
    retrieval, and the forgetting probe, for each side."""
    dont = "don't know"
    lines = [f"{'held-out questions':20}{'right':>7}{'wrong':>7}{dont:>11}{'key fact':>10}{'probe':>7}"]
    for label, scores, forward in ((SFT, stage.sft, not stage.kept), (PREFERRED, stage.preferred, stage.kept)):
        s = scores or Scores()
        o = s.sent
        counts = (f"{_share(o.right, o.n):>7}{_share(o.wrong, o.n):>7}{_share(o.dont_know, o.n):>11}" if o
                  else f"{'–':>7}{'–':>7}{'–':>11}")
        fact = s.with_retrieval.key_fact if s.with_retrieval else None
        lines.append(f"{_row(label, forward):20}{counts}{_pct(fact):>10}{_pct(s.probe):>7}")
    return lines


def live_lines(stage: PreferenceStage) -> list[str]:
    """The live questions (what the team sent, asked again), judged as the bot judges what it sends."""
    sides = [(SFT, stage.sft_live, not stage.kept), (PREFERRED, stage.preferred_live, stage.kept)]
    if all(o is None for _, o, _ in sides):
        return []
    lines = [f"{'live questions':20}{'agrees':>8}{'other':>8}{'declined':>10}"]
    for label, o, forward in sides:
        o = o or LiveOutcomes()
        n = o.agrees + o.other + o.declined + o.unchecked
        lines.append(f"{_row(label, forward):20}{_share(o.agrees, n):>8}{_share(o.other, n):>8}"
                     f"{_share(o.declined, n):>10}")
    return lines


def _settings(stage: PreferenceStage) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in stage.config.items())
    train = stage.train
    ran = ", ".join(f"{k} {train[k]}" for k in ("steps", "loss", "wall_s") if train.get(k) is not None)
    parts = [f"settings: {shown}" if shown else "", f"run: {ran}" if ran else ""]
    return escape(clip("; ".join(p for p in parts if p), SETTINGS_CHARS, one_line=True))


def preference_blocks(stage: PreferenceStage | None) -> list[dict[str, Any]]:
    """Nothing for a version trained before the stage existed; one line when it did not run; else the two sides."""
    if stage is None:
        return []
    reason = escape(clip(stage.reason, REASON_CHARS, one_line=True))
    if not stage.trained:
        return [section(f":information_source: *Preference stage:* did not run{': ' + reason if reason else '.'}")]
    forward = PREFERRED if stage.kept else SFT
    dropped = "" if stage.kept else " (the preference adapter is dropped)"
    table = "\n".join(held_out_lines(stage) + ([""] + live_lines(stage) if live_lines(stage) else []))
    text = (f"*Preference stage:* trained after SFT on {stage.records} preference record(s) (the team's edits, "
            "drafts discarded as wrong then answered, 👎 followed by a correction). Both on the same questions:\n"
            f"```{table}```\n*Goes forward: {forward}*{dropped}." + (f" {reason}" if reason else ""))
    note = ("→ marks the one that goes forward. Right / wrong / don't know = what the bot would send; key fact = "
            "asked with retrieval, as the bot asks; probe = general questions (forgetting); live = the newest "
            "questions the team answered.")
    settings = _settings(stage)
    return [section(text), context(note + (f" {settings}." if settings else ""))]
