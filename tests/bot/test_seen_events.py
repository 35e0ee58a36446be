"""The bot forgets the Slack event ids it has seen once they are a week old (moved here with the pruning, from
tests/trainer/test_scheduler.py; its assertions unchanged)."""

import asyncio

from sqlmodel import select

from bot.seen_events import EventForgetter


async def test_seen_slack_events_stay_bounded_to_a_week(store):
    from datetime import timedelta

    from storage.events import first_delivery
    from storage.models import SeenEvent, utcnow

    with store.session() as s:  # a bot that ran for 30 days, 20 events a day
        for day in range(30):
            for n in range(20):
                s.add(SeenEvent(event_id=f"Ev{day}-{n}", received_at=utcnow() - timedelta(days=day, minutes=n)))
        assert first_delivery(s, "Ev-now")
    forgetter = EventForgetter(store)
    forgetter.first_after_s = 0  # its first round now, inside the running loop, not an hour after start
    forgetter.start()
    try:
        for _ in range(100):  # 5 s at most
            with store.session() as s:
                if len(s.exec(select(SeenEvent)).all()) < 601:
                    break
            await asyncio.sleep(0.05)
        with store.session() as s:
            kept = s.exec(select(SeenEvent)).all()
            assert len(kept) == 7 * 20 + 1  # the last 7 days and the new one
            assert all(e.received_at.replace(tzinfo=None) > (utcnow() - timedelta(days=7)).replace(tzinfo=None)
                       for e in kept)
            assert not first_delivery(s, "Ev0-3")  # a retry within the week is still recognised
    finally:
        await forgetter.stop()


def test_ft_bot_runs_the_forgetter_beside_the_announcer_and_the_sweeper(tmp_path):
    """ftbot.wiring builds the bot's periodic work; the forgetter's first round is an hour after start, as the
    training scheduler's hourly job was. The gaps digest looks hourly whether this week's digest is due."""
    from bot.approvals.announcer import Announcer
    from bot.drafts.flow import Sweeper
    from bot.gaps.digest import GapsDigest
    from ftbot import wiring
    from ftbot.settings import Settings

    app, deps, metrics = wiring.bot(Settings(data_dir=tmp_path, retrieval=False, slack_bot_token="xoxb-1",
                                             slack_signing_secret="s3cret"))
    try:
        assert [type(work) for work in deps.periodic] == [Announcer, Sweeper, EventForgetter, GapsDigest]
        assert (deps.periodic[2].first_after_s, deps.periodic[2].every_s) == (3600, 3600)
        assert (deps.periodic[3].first_after_s, deps.periodic[3].every_s) == (600, 3600)
    finally:
        deps.store.close()
