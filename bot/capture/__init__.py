from bot.capture.handlers import register  # noqa: F401
