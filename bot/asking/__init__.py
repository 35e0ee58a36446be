from bot.asking.answer import register  # noqa: F401
