"""Prometheus metrics of the bot (served on GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
