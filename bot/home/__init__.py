from bot.home.handlers import register  # noqa: F401
