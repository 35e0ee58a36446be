"""JSONL in two formats: OpenAI's chat fine-tuning `messages`, and TRL's prompt/completion; and out only, TRL's
conversational preference format for the preference records (Preference rows: the team's text preferred to the
bot's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO, Iterator

from core.prompt import prompt_messages

FORMATS = ("openai", "prompt-completion")  # examples, both ways
PREFERENCE = "preference"
EXPORT_FORMATS = FORMATS + (PREFERENCE,)


def to_record(question: str, answer: str, fmt: str, system_prompt: str | None = None) -> dict:
    if fmt == "openai":
        return {"messages": prompt_messages(system_prompt or "", question) + [{"role": "assistant", "content": answer}]}
    if fmt == "prompt-completion":
        return {"prompt": question, "completion": answer}
    raise ValueError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")


def preference_record(prompt: list[dict[str, str]], chosen: str, rejected: str) -> dict:
    """TRL's conversational preference format with an explicit prompt (trl.data_utils: `is_conversational`,
    `maybe_apply_chat_template`; what DPOTrainer reads): the prompt as the bot asked it (system prompt, then the user
    turn with its retrieved pairs), the team's text as the chosen assistant turn, the bot's as the rejected one. The
    prompt stays apart rather than repeated in chosen and rejected (the implicit form), so a trainer never has to
    find where the shared prefix ends."""
    return {"prompt": [{"role": m["role"], "content": m["content"]} for m in prompt],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def from_record(obj: object) -> tuple[str, str]:
    """(question, answer) from either format; ValueError says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        ):
            raise ValueError('"messages" must be a list of {"role", "content"} objects with text content')
        turns = [m for m in messages if m["role"] != "system"]
        if len(turns) < 2 or turns[-1]["role"] != "assistant" or turns[-2]["role"] != "user":
            raise ValueError("a conversation must end with a user message and then an assistant answer")
        question, answer = turns[-2]["content"], turns[-1]["content"]
    elif "prompt" in obj and "completion" in obj:
        question, answer = obj["prompt"], obj["completion"]
        if not isinstance(question, str) or not isinstance(answer, str):
            raise ValueError('"prompt" and "completion" must be strings')
    else:
        raise ValueError('expected "messages" (openai) or "prompt" and "completion"')
    if not question.strip() or not answer.strip():
        raise ValueError("empty question or answer")
    return question, answer


class TooBig(ValueError):
    """The file holds more bytes than the caller allows."""


def _lines(fh: BinaryIO, max_mb: float | None) -> Iterator[bytes]:
    left = None if max_mb is None else int(max_mb * 2**20)
    while raw := fh.readline(-1 if left is None else left + 1):
        if left is not None:
            left -= len(raw)
            if left < 0:
                raise TooBig(f"over the {max_mb:g} MB limit for one file")
        yield raw


def read_records(path: Path, max_mb: float | None = None) -> Iterator[tuple[int, tuple[str, str] | None, str | None]]:
    """Yield (line number, (question, answer) or None, error or None); blank lines are skipped. A bad line
    (no UTF-8, no JSON, nested too deeply for the parser, not a pair) is one error; the others still count.
    Raises TooBig once more than max_mb were read: no line is read past it (one line may be the whole file)."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(_lines(fh, max_mb), 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
                continue
            if not line.strip():
                continue
            try:
                yield lineno, from_record(json.loads(line)), None
            except json.JSONDecodeError as exc:
                yield lineno, None, f"not valid JSON ({exc.msg})"
            except RecursionError:
                yield lineno, None, "nested too deeply to read"
            except ValueError as exc:
                yield lineno, None, str(exc)
