"""What counts as a person's question in a message event, decided once for every surface (DMs, mentions, watched
channels)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from bot.slack.markup import to_plain

# A message with content: a plain one, one with a file, a thread reply also sent to the channel. Edits, joins,
# topic changes and deletions are no questions.
CONTENT_SUBTYPES = (None, "file_share", "thread_broadcast")


def is_customer_question(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """Written by a person (not a bot, not the bot itself, with a user), and a message with content."""
    user = event.get("user")
    return (event.get("subtype") in CONTENT_SUBTYPES and not event.get("bot_id") and bool(user)
            and user != bot_user_id)


def question_text(text: str, bot_user_id: str | None) -> str:
    """The message without the bot's own mention, as plain text."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text or "")
    return to_plain(text)
