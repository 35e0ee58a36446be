"""Slack Web API helpers shared by the surfaces (streamed answers)."""
