"""storage.audience.remember: two events from a channel ftbot has not seen yet record it once, and neither fails
(the second finds the row the first made: a question is never lost to the race)."""

import threading

from core.states import ChannelKind
from storage import audience
from storage.models import SlackChannel


def test_a_new_channel_seen_by_two_events_at_once_is_recorded_once(store):
    start, errors = threading.Barrier(8), []

    def learn():
        start.wait()
        try:
            with store.session() as s:
                audience.remember(s, "GNEW", ChannelKind.PRIVATE, "finance")
        except Exception as exc:  # noqa: BLE001  (collected: the assertion below shows it)
            errors.append(exc)

    threads = [threading.Thread(target=learn) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.session() as s:
        assert (s.get(SlackChannel, "GNEW").kind, s.get(SlackChannel, "GNEW").name) == (ChannelKind.PRIVATE, "finance")
        assert audience._first_sight(s, "GNEW", ChannelKind.PRIVATE, None) is None  # made already: not again
