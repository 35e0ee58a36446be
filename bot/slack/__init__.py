"""Slack knowledge every surface shares."""
