"""Links to a message in the workspace (https://acme.slack.com/archives/C…/p…)."""

from __future__ import annotations

from typing import Any

from core.states import ExampleSource


def permalink(workspace_url: str, channel: str, ts: str, thread_ts: str | None = None) -> str:
    """Slack's permalink form, built locally (no chat.getPermalink call per link)."""
    link = f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    return link + (f"?thread_ts={thread_ts}" if thread_ts else "")


def pair_link(workspace_url: str, source: dict[str, Any]) -> str | None:
    """The message that gave an approved pair's answer (a Slack thread imported or labelled, a draft the team sent),
    when its source says where; None otherwise (a JSONL import, a correction form)."""
    where = source or {}
    if not workspace_url or where.get("kind") not in (ExampleSource.SLACK, ExampleSource.DRAFT):
        return None
    if not (where.get("channel_id") and where.get("ts")):
        return None
    return permalink(workspace_url, where["channel_id"], where["ts"], where.get("thread_ts"))
