"""What each channel mode does, as one table beside `ChannelMode`: every surface asks `policy(mode)` instead of
comparing modes, so a new mode is one row here, and a mode the table does not describe fails loudly."""

from __future__ import annotations

from dataclasses import dataclass

from core.states import ChannelMode


class UnknownMode(ValueError):
    """A channel mode the policy table does not describe (a row in the database from a newer or older ftbot)."""


@dataclass(frozen=True)
class ModePolicy:
    says: str  # the mode in one line, as `/ft channel` shows it
    answers_mentions_from_team: bool  # an @mention by the support team gets the bot's answer in the thread
    answers_mentions_from_customers: bool  # an @mention by anyone else does (False: a draft or auto answer instead)
    watches_questions: bool  # a customer's top-level message is a question with a Draft row
    drafts_card: bool  # every such question gets a card for the team (Send / Edit & send / Discard)
    posts_answer: bool  # the bot's answer goes straight to the customer
    hands_off_on_decline: bool  # a declined question is handed to the team with a card
    needs_drafts_channel: bool  # the team's cards need a channel of their own
    earned: bool  # switching to it asks for the channel's record on the ladder (storage.channels.Ladder)


POLICIES: dict[str, ModePolicy] = {
    ChannelMode.OFF: ModePolicy(
        says="off: the bot stays silent here",
        answers_mentions_from_team=False, answers_mentions_from_customers=False, watches_questions=False,
        drafts_card=False, posts_answer=False, hands_off_on_decline=False, needs_drafts_channel=False, earned=False),
    ChannelMode.MENTION: ModePolicy(
        says="mention: the bot answers when someone mentions it",
        answers_mentions_from_team=True, answers_mentions_from_customers=True, watches_questions=False,
        drafts_card=False, posts_answer=False, hands_off_on_decline=False, needs_drafts_channel=False, earned=False),
    ChannelMode.DRAFT: ModePolicy(
        says="draft: customers' questions get a draft the team sends, edits or discards",
        answers_mentions_from_team=True, answers_mentions_from_customers=False, watches_questions=True,
        drafts_card=True, posts_answer=False, hands_off_on_decline=False, needs_drafts_channel=True, earned=False),
    ChannelMode.AUTO: ModePolicy(
        says="auto: the bot answers customers' questions itself and hands off what it can't",
        answers_mentions_from_team=True, answers_mentions_from_customers=False, watches_questions=True,
        drafts_card=False, posts_answer=True, hands_off_on_decline=True, needs_drafts_channel=True, earned=True),
}


def policy(mode: str) -> ModePolicy:
    """The row for `mode`; UnknownMode for a mode the table does not describe (never a guess such as auto)."""
    found = POLICIES.get(mode)
    if found is None:
        raise UnknownMode(f"channel mode {mode!r} has no policy in core.modes.POLICIES "
                          f"(known: {', '.join(POLICIES)})")
    return found
