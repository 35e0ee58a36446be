"""The curated store: tables, migrations, queries, snapshots, JSONL, PII redaction and dedup.

Imports nothing of ours and nothing heavy, so the bot image stays light.
"""

from storage.db import Store, open_store

__all__ = ["Store", "open_store"]
