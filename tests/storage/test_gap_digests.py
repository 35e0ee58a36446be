"""storage.gap_digests: a week's digest is claimed once; a claim left by a bot that stopped mid-way is taken over,
one that posted or found the week empty never is."""

from datetime import timedelta

from storage import gap_digests
from storage.models import GapDigest, utcnow


def test_a_week_is_claimed_once_and_a_stale_claim_is_taken_over(store):
    with store.session() as s:
        assert gap_digests.claim(s, "2026-W45", "CCUR")
    with store.session() as s:
        assert not gap_digests.claim(s, "2026-W45", "CCUR")  # posting now, by another replica
        s.get(GapDigest, "2026-W45").at = utcnow() - gap_digests.STALE_CLAIM - timedelta(minutes=1)
    with store.session() as s:
        assert gap_digests.claim(s, "2026-W45", "CCUR")  # left by a bot that stopped
        gap_digests.done(s, "2026-W45", ts="", gaps=0, questions=0)
        s.get(GapDigest, "2026-W45").at = utcnow() - timedelta(days=1)
    with store.session() as s:
        assert not gap_digests.claim(s, "2026-W45", "CCUR")  # done (an empty week): never again
        assert gap_digests.claim(s, "2026-W46", "CCUR")
        gap_digests.release(s, "2026-W46")  # Slack refused the post
    with store.session() as s:
        assert gap_digests.claim(s, "2026-W46", "CCUR")
