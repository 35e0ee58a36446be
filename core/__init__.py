"""What trainer, serving and bot agree on, written once: the serving contract and its records (contract), the
prompt (prompt), the retrieval and grounding rules (nearest, grounding, facts, overlap), the embedder that retrieval
and evaluation share (embedder), the machine's CPU topology (machine), the typed states and outcomes (states), and
the one rule for shortening text to fit (text).

The bottom package: imports nothing of ours, and nothing heavy at import time (numpy only inside embedder).
"""
