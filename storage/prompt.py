"""The one prompt shape: how a question is put to the model in training, evaluation, the deployment
smoke test and the bot alike. An adapter answers best when asked exactly as it was taught.

    [{"role": "system", "content": <system prompt>}, {"role": "user", "content": <question>}]

It lives in storage because it is part of what a stored example means as a conversation (the
`openai` JSONL export writes the same shape), and every package may import storage.
"""

from __future__ import annotations


def prompt_messages(system_prompt: str, question: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": question}]
