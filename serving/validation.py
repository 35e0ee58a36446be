"""What the embedded server checks in a request before the model, the tokenizer or the file system sees it.

Each check returns why the input is refused (None: it is fine), so the server answers 400 naming the field
instead of failing later with a RecursionError, a tokenizer TypeError or an OSError (a 500 and a traceback).
"""

from __future__ import annotations

from typing import Any

# Deeper JSON is refused: OpenAI's chat bodies are a few levels deep, and deep nesting is what makes the
# json module and str() recurse until RecursionError.
MAX_JSON_DEPTH = 64
# vLLM's range for `seed` (torch.long, vllm/entrypoints/openai/protocol.py); torch.manual_seed takes it too.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
NAME_MAX, PATH_MAX = 255, 4096  # bytes in one path component, and in a whole path (Linux)


def shown(value: Any, limit: int = 40) -> str:
    """repr(value), cut: a refused 4,000-digit integer need not come back whole."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def text_problem(text: str) -> str | None:
    """Why `text` is not valid Unicode (a lone surrogate, which JSON's \\ud800 escape lets through)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid Unicode: a lone surrogate {text[exc.start]!r} at character {exc.start}"
    return None


def body_problem(body: Any) -> tuple[str, str | None] | None:
    """(message, param) for a parsed JSON body nested deeper than MAX_JSON_DEPTH or holding a string that is not
    valid Unicode; param is the top-level field it is in. Walked without recursion."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(body, ())]
    while stack:
        value, where = stack.pop()
        if len(where) >= MAX_JSON_DEPTH:
            return f"the request body is nested deeper than {MAX_JSON_DEPTH} levels (at {_path(where)})", _top(where)
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return f"{_path(where) or 'the body'} {problem}", _top(where)
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem:
                    return f"a key in {_path(where) or 'the body'} {problem}", _top(where)
                stack.append((item, (*where, key)))
        elif isinstance(value, list):
            stack.extend((item, (*where, i)) for i, item in enumerate(value))
    return None


def path_problem(path: str) -> str | None:
    """Why `path` cannot name a file here: a NUL, text that is not valid Unicode, or longer than the OS allows."""
    if "\x00" in path:
        return "contains a NUL character"
    problem = text_problem(path)
    if problem:
        return problem
    if len(path.encode("utf-8")) > PATH_MAX:
        return f"is longer than {PATH_MAX} bytes"
    if any(len(part.encode("utf-8")) > NAME_MAX for part in path.split("/")):
        return f"has a file name longer than {NAME_MAX} bytes"
    return None


def _top(where: tuple[Any, ...]) -> str | None:
    return str(where[0]) if where else None


def _path(where: tuple[Any, ...]) -> str:
    """('messages', 1, 'content') -> 'messages[1].content'."""
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else f".{shown(part)[1:-1]}" if text else shown(part)[1:-1]
    return text
