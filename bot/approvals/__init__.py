from bot.approvals.announcer import register  # noqa: F401
