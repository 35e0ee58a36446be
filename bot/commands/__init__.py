from bot.commands.dispatch import register  # noqa: F401
