from bot.curation.handlers import register  # noqa: F401
