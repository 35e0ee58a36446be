"""Block Kit and message rendering, one module per surface, built from the pieces in blocks (sections, context
lines, buttons, mrkdwn escaping): listeners never build blocks inline."""
