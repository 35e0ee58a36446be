from bot.changes.handlers import register  # noqa: F401
