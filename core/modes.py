"""What each channel mode does, as one table beside `ChannelMode`: every surface asks `policy(mode)` instead of
comparing modes, so a new mode is one row here, and a mode the table does not describe fails loudly."""

from __future__ import annotations

from dataclasses import dataclass

from core.states import ChannelMode


class UnknownMode(ValueError):
    """A channel mode the policy table does not describe (a row in the database from a newer or older ftbot)."""


@dataclass(frozen=True)
class ModePolicy:
    answers_mentions_from_team: bool  # an @mention by the support team gets the bot's answer in the thread
    answers_mentions_from_customers: bool  # an @mention by anyone else does (False: a draft or auto answer instead)
    watches_questions: bool  # a customer's top-level message is a question with a Draft row
    drafts_card: bool  # every such question gets a card for the team (Send / Edit & send / Discard)
    posts_answer: bool  # the bot's answer goes straight to the customer
    hands_off_on_decline: bool  # a declined question is handed to the team with a card
    needs_drafts_channel: bool  # the team's cards need a channel of their own
    earned: bool  # switching to it asks for the channel's record on the ladder (storage.channels.Ladder)
    # Streamed, the model's words show before the grounding check has judged them: only where the asker or the team
    # reads (a customer, in a channel or in auto mode, gets only checked text, posted whole).
    streams_team_mentions: bool  # a team member's @mention: streamed to them, replaced if the check declines
    streams_card: bool  # the team's card shows the draft as the model writes it


POLICIES: dict[str, ModePolicy] = {  # the fields, in ModePolicy's order:
    #       mentions answered: team, customers; watches, card, posts, hand-off, drafts channel, earned; streams: team
    #       mentions, card
    ChannelMode.OFF: ModePolicy(False, False, False, False, False, False, False, False, False, False),
    ChannelMode.MENTION: ModePolicy(True, True, False, False, False, False, False, False, True, False),
    ChannelMode.DRAFT: ModePolicy(True, False, True, True, False, False, True, False, True, True),
    ChannelMode.AUTO: ModePolicy(True, False, True, False, True, True, True, True, True, False),
}


def policy(mode: str) -> ModePolicy:
    """The row for `mode`; UnknownMode for a mode the table does not describe (never a guess such as auto)."""
    found = POLICIES.get(mode)
    if found is None:
        raise UnknownMode(f"channel mode {mode!r} has no policy in core.modes.POLICIES "
                          f"(known: {', '.join(POLICIES)})")
    return found
