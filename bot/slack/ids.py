"""The row id a button's value or a form's private_metadata carries: one parser for every surface."""

from __future__ import annotations


def parse_id(value: str | None) -> int | None:
    """The id, or None when the value is missing or no number (a stale or forged payload)."""
    try:
        return int(value or "")
    except ValueError:
        return None
