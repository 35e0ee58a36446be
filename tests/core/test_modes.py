import pytest

from core.modes import POLICIES, UnknownMode, policy
from core.states import ChannelMode


def test_every_channel_mode_has_one_policy():
    assert set(POLICIES) == set(ChannelMode)
    assert policy(ChannelMode.DEFAULT) is POLICIES[ChannelMode.MENTION]


def test_a_mode_the_table_does_not_describe_fails_loudly():
    fake = "manual"  # a mode added to ChannelMode (or a row written by another version) without its policy
    with pytest.raises(UnknownMode, match="manual"):
        policy(fake)
