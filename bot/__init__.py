"""Slack: the Bolt app and its listeners, and Slack knowledge (markup, threads, exports).

Imports `storage` and `serving`'s client only; nothing here needs torch.
"""
