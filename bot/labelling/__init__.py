from bot.labelling.handlers import register  # noqa: F401
