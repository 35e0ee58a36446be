from bot.drafts.flow import register  # noqa: F401
