"""Whether the bot answers a mention, from the channel's mode (core.modes)."""

from __future__ import annotations

from core.modes import policy


def answers_mention(mode: str, *, from_team: bool) -> bool:
    """off: never; a watched channel (draft, auto): the team only, since a customer's question there gets a draft
    or an auto answer (bot.drafts), not a second reply; mention: everyone."""
    rules = policy(mode)
    return rules.answers_mentions_from_team if from_team else rules.answers_mentions_from_customers
