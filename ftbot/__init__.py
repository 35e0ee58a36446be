"""ftbot's composition root: settings and the `ft` command wire the four packages together."""
