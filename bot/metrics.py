"""Prometheus metrics of the bot (served on GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from core.states import DraftStatus
from storage.models import Draft
from storage.outcomes import first_response_s

# When a Draft row's new status means a first response reached someone: the bot's card or answer, a person's answer.
_BOT_RESPONDED = (DraftStatus.PENDING, DraftStatus.ANSWERED, DraftStatus.HANDED_OFF)
_HUMAN_RESPONDED = (DraftStatus.SENT, DraftStatus.EDITED, DraftStatus.SUPERSEDED)


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.events = Counter("ftbot_slack_requests_total", "Slack requests handled, by kind and outcome",
                              ["kind", "outcome"], registry=self.registry)
        self.answers = Counter("ftbot_answers_total", "Questions answered, by outcome", ["outcome"],
                               registry=self.registry)
        self.answer_seconds = Histogram("ftbot_answer_seconds", "Time to answer a question",
                                        registry=self.registry,
                                        buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
        self.examples = Gauge("ftbot_examples", "Examples in the store, by status", ["status"],
                              registry=self.registry)
        # Live outcomes as they happen (storage.outcomes defines them over the Draft table, which keeps the totals
        # across restarts). channel: the watched channel's id; mode: "draft" | "auto"; outcome: the Draft status
        # reached (pending = a card posted, sent, edited, discarded, superseded, expired, answered, handed_off,
        # failed), or an event that leaves the status as it is ("resolved", "followed_up"); version: the version
        # that answered, "base" for the base model.
        self.draft_outcomes = Counter("ftbot_draft_outcomes_total",
                                      "Questions in watched channels, by what became of the bot's answer",
                                      ["channel", "mode", "outcome", "version"], registry=self.registry)
        # by: "bot" (the draft card posted, or the auto answer or hand-off note) | "human" (a person's answer
        # reached the customer). Seconds from the customer's question.
        self.first_response_seconds = Histogram(
            "ftbot_first_response_seconds", "Time from a customer's question to its first response, by who gave it",
            ["by"], registry=self.registry,
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600))

    def draft_outcome(self, draft: Draft, outcome: str | None = None) -> None:
        """Count a Draft row once, right after its status changed (after the commit: a refused double Send is not
        counted); outcome overrides the status for events that keep it ("resolved", "followed_up"). A status that
        is a first response (a card posted or an auto answer; a person's send, edit or hand reply) is timed too."""
        self.draft_outcomes.labels(channel=draft.channel_id, mode=draft.mode, outcome=outcome or draft.status,
                                   version=draft.version_name or "base").inc()
        if outcome is None:
            if draft.status in _BOT_RESPONDED:
                self.first_response(draft, "bot")
            elif draft.status in _HUMAN_RESPONDED:
                self.first_response(draft, "human")

    def first_response(self, draft: Draft, by: str) -> None:
        """Time the first response by "bot" or "human" (e.g. a team member's reply after an auto hand-off, which
        changes no status); nothing when the row has no such time yet."""
        seconds = first_response_s(draft, by)
        if seconds is not None:
            self.first_response_seconds.labels(by=by).observe(seconds)
