"""Slack knowledge every surface shares: markup, thread → pair, people, posting, streamed answers."""
