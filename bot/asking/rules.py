"""Whether the bot answers a mention, and streams it, from the channel's mode (core.modes); whether a streamed answer
may stand."""

from __future__ import annotations

from core.modes import policy


def answers_mention(mode: str, *, from_team: bool) -> bool:
    """off: never; a watched channel (draft, auto): the team only, since a customer's question there gets a draft
    or an auto answer (bot.drafts), not a second reply; mention: everyone."""
    rules = policy(mode)
    return rules.answers_mentions_from_team if from_team else rules.answers_mentions_from_customers


def streams_mention(mode: str, *, from_team: bool) -> bool:
    """A team member's mention is streamed to them where the mode says so; a customer's never is: a channel's
    customers get only text the grounding check passed."""
    return from_team and policy(mode).streams_team_mentions


def stands(answer: str, streamed: str) -> bool:
    """Whether what was streamed is the answer to keep: the check passed it unchanged (a refusal or an echo cut
    from it means the whole message is replaced)."""
    return answer.strip() == streamed.strip()
