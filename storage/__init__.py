"""The curated store: tables, migrations, queries, snapshots, JSONL, PII redaction and dedup.

The rules the packages share (the contract, the prompt, grounding, the embedder) and the statuses the tables hold
(core.states) live in `core`, below this one.
Imports nothing of ours but `core`, and nothing heavy, so the bot image stays light.
"""

from storage.db import Store, open_store

__all__ = ["Store", "open_store"]
