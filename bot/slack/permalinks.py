"""Links to a message in the workspace (https://acme.slack.com/archives/C…/p…)."""

from __future__ import annotations


def permalink(workspace_url: str, channel: str, ts: str, thread_ts: str | None = None) -> str:
    """Slack's permalink form, built locally (no chat.getPermalink call per link)."""
    link = f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    return link + (f"?thread_ts={thread_ts}" if thread_ts else "")
