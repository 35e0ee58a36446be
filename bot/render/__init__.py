"""Block Kit and message rendering, one module per surface: listeners never build blocks inline."""
