"""Draft rows as the watched-channel code writes them: every status of draft and auto mode, two versions, known
times. storage, CLI and bot tests check their figures against these rows."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from core.states import ChannelMode, DraftStatus
from storage.models import Draft, Feedback, SlackChannel

DRAFTS, AUTO, OTHER_CHANNEL = "CDRAFTS", "CAUTO", "C0OTHERCH"
V1 = "support-v1"
S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
_ts = itertools.count(1)


def draft(now: datetime, channel: str, mode: str, status: str, *, version: str | None = V1, ago: timedelta = 2 * H,
          bot: timedelta | None = None, human: timedelta | None = None, acted_ago: timedelta | None = None,
          **fields) -> Draft:
    """A question asked `ago` before now; bot, human: when the card (or answer) and a person's answer came after it."""
    asked = now - ago
    return Draft(mode=mode, channel_id=channel, question_ts=f"{next(_ts)}.000100", question="q", status=status,
                 version_name=version, asked_at=asked, bot_response_at=asked + bot if bot is not None else None,
                 human_response_at=asked + human if human is not None else None,
                 acted_at=now - acted_ago if acted_ago is not None else None, **fields)


def seed(store, now: datetime) -> None:
    """#help-desk (CDRAFTS) in draft mode: 14 questions; #pro-support (CAUTO) in auto mode: 8; C0OTHERCH: 2 (one of
    them 10 days old). The expected figures are worked out in tests/storage/test_outcomes.py."""
    d, a = ChannelMode.DRAFT, ChannelMode.AUTO
    with store.session() as s:
        s.add(SlackChannel(id=DRAFTS, name="help-desk", mode=d, drafts_channel="CTEAM"))
        s.add(SlackChannel(id=AUTO, name="pro-support", mode=a, drafts_channel="CTEAM"))
        up, down = Feedback(question="q", rating="up"), Feedback(question="q", rating="down")
        unrated = Feedback(question="q", rating="none")
        s.add_all([up, down, unrated])
        s.flush()
        s.add_all([
            # draft mode, support-v1 (10) and the base model (4)
            draft(now, DRAFTS, d, DraftStatus.SENT, bot=10 * S, human=60 * S, acted_ago=1 * M),
            draft(now, DRAFTS, d, DraftStatus.SENT, bot=20 * S, human=120 * S, acted_ago=3 * M),
            draft(now, DRAFTS, d, DraftStatus.EDITED, edit_chars=10, bot=30 * S, human=300 * S, acted_ago=10 * M),
            draft(now, DRAFTS, d, DraftStatus.EDITED, version=None, edit_chars=40, bot=5 * S, human=600 * S,
                  acted_ago=11 * M),
            draft(now, DRAFTS, d, DraftStatus.EDITED, declined=True, edit_chars=100, bot=15 * S, human=900 * S,
                  acted_ago=12 * M),
            draft(now, DRAFTS, d, DraftStatus.DISCARDED, discard_reason="wrong", acted_ago=2 * M),
            draft(now, DRAFTS, d, DraftStatus.DISCARDED, version=None, discard_reason="outdated", acted_ago=13 * M),
            draft(now, DRAFTS, d, DraftStatus.DISCARDED, discard_reason="not_a_question", acted_ago=14 * M),
            draft(now, DRAFTS, d, DraftStatus.DISCARDED, discard_reason="other", acted_ago=15 * M),
            draft(now, DRAFTS, d, DraftStatus.SUPERSEDED, version=None, human=1200 * S),  # acted_at unset: by hand
            draft(now, DRAFTS, d, DraftStatus.EXPIRED, ago=30 * H),
            draft(now, DRAFTS, d, DraftStatus.PENDING),
            draft(now, DRAFTS, d, DraftStatus.SENDING),
            draft(now, DRAFTS, d, DraftStatus.FAILED, version=None),
            # auto mode, support-v1
            draft(now, AUTO, a, DraftStatus.ANSWERED, ago=48 * H, bot=3 * S, feedback_id=up.id, resolved_by="UASKER",
                  resolved_at=now - 47 * H),
            draft(now, AUTO, a, DraftStatus.ANSWERED, ago=30 * H, bot=2 * S, feedback_id=down.id),  # assumed
            draft(now, AUTO, a, DraftStatus.ANSWERED, ago=30 * H, bot=2 * S, feedback_id=unrated.id,
                  followed_up_at=now - 29 * H),  # came back within the window
            draft(now, AUTO, a, DraftStatus.ANSWERED, ago=2 * H, bot=2 * S),  # the window has not passed
            draft(now, AUTO, a, DraftStatus.ANSWERED, ago=30 * H, bot=2 * S,
                  followed_up_at=now - 4 * H),  # came back after the window: still assumed
            draft(now, AUTO, a, DraftStatus.ANSWERED, ago=24 * H, bot=2 * S),  # exactly the window: assumed
            draft(now, AUTO, a, DraftStatus.HANDED_OFF, declined=True, ago=5 * H, bot=4 * S, human=1800 * S),
            draft(now, AUTO, a, DraftStatus.FAILED, ago=5 * H),
            # another channel: a card stamped before its question (clocks differ), and a question 10 days old
            draft(now, OTHER_CHANNEL, d, DraftStatus.PENDING, bot=-5 * S),
            draft(now, OTHER_CHANNEL, d, DraftStatus.SENT, ago=240 * H, acted_ago=239 * H),
        ])
