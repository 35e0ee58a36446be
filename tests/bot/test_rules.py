"""The surfaces' rules are plain functions: one rule for a person's question, one table for the channel modes."""

import pytest

from bot.asking.rules import answers_mention
from bot.drafts.rules import first_status
from bot.slack.questions import is_customer_question
from core.modes import UnknownMode, policy
from core.states import ChannelMode, DraftStatus

BOT = "UBOT"


@pytest.mark.parametrize("subtype", [None, "file_share", "thread_broadcast"])
def test_a_persons_message_with_content_is_a_question(subtype):
    assert is_customer_question({"user": "U1", "subtype": subtype, "text": "how?"}, BOT)


@pytest.mark.parametrize("event", [
    {"user": "U1", "subtype": "message_changed"}, {"user": "U1", "subtype": "channel_join"},
    {"user": "U1", "subtype": "message_deleted"}, {"user": "U1", "bot_id": "B1"}, {"user": BOT}, {"text": "hi"},
])
def test_bots_the_bot_edits_joins_and_deletions_are_no_questions(event):
    assert not is_customer_question(event, BOT)


def test_mentions_follow_the_mode_table():
    assert answers_mention(ChannelMode.MENTION, from_team=False)
    assert not answers_mention(ChannelMode.OFF, from_team=True)
    assert answers_mention(ChannelMode.DRAFT, from_team=True) and not answers_mention(ChannelMode.AUTO,
                                                                                       from_team=False)


def test_a_mode_without_a_policy_fails_loudly_instead_of_acting_like_auto():
    with pytest.raises(UnknownMode):
        answers_mention("manual", from_team=False)
    with pytest.raises(UnknownMode):
        policy("manual")


def test_a_questions_first_status_comes_from_the_mode():
    assert first_status(policy(ChannelMode.DRAFT), failed=False, declined=True) == DraftStatus.PENDING
    assert first_status(policy(ChannelMode.AUTO), failed=False, declined=True) == DraftStatus.HANDED_OFF
    assert first_status(policy(ChannelMode.AUTO), failed=False, declined=False) == DraftStatus.ANSWERED
    assert first_status(policy(ChannelMode.AUTO), failed=True, declined=False) == DraftStatus.FAILED
