"""Key facts: the numbers, codes and names that make a support answer right.

A support answer is right when it states the fact ("the trial lasts 21 days", "QM-E42 means the
bank link expired"); its wording matters little. So a reference answer's key facts are:

- numbers: every number in it, amounts and times included (`€6` → `6`, `07:00` → `7:00`,
  `0.1 h` → `0.1`, `1,000` → `1000`), number words too (`four hours` → `4`);
- codes: tokens that mix capitals and digits or are joined by a dash (`QM-E42`, `E63`);
- names: capitalised words that do not start a sentence (`Tax Pack`, `Helsinki`, `Reconnect`),
  minus a short stop list; acronyms count (`VAT`, `EU`).

`key_items(reference, question)` is the numbers and codes of the reference that the question
does not already contain (a number the customer gave is context, not the fact); when there are
none, the names the question does not contain. An answer *carries the key fact* when it contains
at least half of those items (rounded up: 1 of 1, 1 of 2, 2 of 3, 2 of 4). Numbers compare as
normalised numbers, codes and names case-insensitively as whole words (a name also in its plural
or singular: "Tuesdays" states "Tuesday"). A reference with no key
items has no key fact to check and is left out of the key-fact score.

The same extraction groups training answers that state the same fact (see `trainer.data`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

NUMBER_WORDS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "ninety": 90, "hundred": 100,
}  # "one" is left out: far more often a pronoun ("each additional one") than a number
STOP_NAMES = {
    "i", "yes", "no", "not", "sorry", "thanks", "thank", "hi", "hello", "hey", "ok", "okay", "good", "great",
    "please", "just", "the", "a", "an", "it", "its", "this", "that", "there", "you", "your", "we", "our",
    "if", "when", "then", "so", "but", "and", "or", "of", "in", "on", "at", "to", "for", "with", "by",
    "done", "correction", "nothing", "absolutely", "all", "any", "every", "each", "after", "before",
}
UNIT_STOP = {"per", "a", "an", "is", "are", "too", "until", "with", "or", "and", "x"}
CODE = re.compile(r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b"
                  r"|\b[A-Z]+\d+[A-Z0-9]*\b")
NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,:]\d+)*)")
WORD = re.compile(r"[A-Za-z][A-Za-z&'’-]*")
SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]|\")\s*$")
UNIT = re.compile(r"[\s-]*(?:%|[A-Za-z]+)")
CURRENCY = "€$£"


def _norm_number(raw: str) -> str:
    if ":" in raw:  # a time: 06:00 and 6:00 are the same
        hours, rest = raw.split(":", 1)
        return f"{int(hours)}:{rest}"
    if re.fullmatch(r"\d{1,3}(,\d{3})+", raw):
        raw = raw.replace(",", "")
    raw = raw.replace(",", ".")
    if "." in raw:
        return raw.rstrip("0").rstrip(".") or "0"
    return str(int(raw))


def codes(text: str) -> set[str]:
    return {c.upper() for c in CODE.findall(text)}


def numbers(text: str, with_units: bool = False) -> set[str]:
    """Normalised numbers; with_units appends the word that follows ("10 day") for grouping."""
    text = CODE.sub(" ", text)
    found: set[str] = set()
    for m in NUMBER.finditer(text):
        number = _norm_number(m.group(1))
        if with_units:
            before = text[max(0, m.start() - 1):m.start()]
            number = (before if before and before in CURRENCY else "") + number + _unit(text, m.end())
        found.add(number)
    for m in re.finditer(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", text, re.IGNORECASE):
        found.add(str(NUMBER_WORDS[m.group(1).lower()]) + (_unit(text, m.end()) if with_units else ""))
    return found


def _unit(text: str, end: int) -> str:
    m = UNIT.match(text, end)
    if not m:
        return ""
    word = m.group(0).strip(" -").lower()
    if word in STOP_NAMES or word in UNIT_STOP:
        return ""
    return " " + (word[:-1] if word.endswith("s") and len(word) > 3 else word)


def names(text: str) -> set[str]:
    found: set[str] = set()
    for m in WORD.finditer(text):
        word = re.sub(r"['’]s$", "", m.group(0)).strip("'’-")
        if not word or not word[0].isupper() or word.lower() in STOP_NAMES:
            continue
        if SENTENCE_START.search(text[:m.start()]):
            continue
        found.add(word.lower())
    return found


def key_items(reference: str, question: str = "") -> set[str]:
    """The reference's key facts that the question does not already state (see the module docstring)."""
    q_nums, q_codes = numbers(question), codes(question)
    items = {f"#{n}" for n in numbers(reference) - q_nums} | {f"@{c}" for c in codes(reference) - q_codes}
    if not items:
        q_names = {w.lower() for w in WORD.findall(question)}
        items = {f"${n}" for n in names(reference) - q_names}
    return items


def found_items(answer: str, items: set[str]) -> set[str]:
    """Which of key_items(...) the answer states."""
    a_nums, a_lower = numbers(answer), answer.lower()
    hit: set[str] = set()
    for item in items:
        kind, value = item[0], item[1:]
        if kind == "#" and value in a_nums:
            hit.add(item)
        elif kind == "@" and re.search(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])", answer, re.IGNORECASE):
            hit.add(item)
        elif kind == "$" and re.search(r"(?<!\w)" + _name_forms(value) + r"(?!\w)", a_lower):
            hit.add(item)
    return hit


def _name_forms(name: str) -> str:
    """A name as a pattern matching its plural or singular too: "Tuesday" is stated by "on Tuesdays",
    "CSV" by "CSVs", "Reports" by "Report"."""
    stem = name[:-1] if name.endswith("s") and len(name) > 3 else name
    return re.escape(stem) + "(?:s|es)?"


def carries_key_fact(answer: str, reference: str, question: str = "") -> bool | None:
    """True when the answer states at least half of the reference's key items; None when it has none."""
    items = key_items(reference, question)
    if not items:
        return None
    return len(found_items(answer, items)) >= math.ceil(len(items) / 2)


def fact_signature(answer: str) -> frozenset[str]:
    """What an answer asserts, for grouping: its numbers with their unit word, and its codes."""
    return frozenset(numbers(answer, with_units=True)) | frozenset(f"@{c}" for c in codes(answer))


def content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text) if len(w) > 2 and w.lower() not in STOP_NAMES}


SAME_FACT_JACCARD = 0.5


def same_fact(sig_a: frozenset[str], sig_b: frozenset[str], words_a: set[str], words_b: set[str]) -> bool:
    """Two answers state the same fact (see the module docstring)."""
    shared = sig_a & sig_b
    # A bare number ("12") is too weak alone; a number with its unit ("12 month"), an amount or a code is not.
    strong = {s for s in shared if not s.replace(".", "").replace(":", "").isdigit()}
    if strong and len(shared) / len(sig_a | sig_b) >= SAME_FACT_JACCARD:
        return True
    union = words_a | words_b
    return bool(union) and len(words_a & words_b) / len(union) >= SAME_FACT_JACCARD


def fact_groups(rows: Sequence[Any]) -> list[list[int]]:
    """For each row, the indexes of the rows whose answers state the same fact (itself excluded)."""
    answers = [r["answer"] if isinstance(r, dict) else r.answer for r in rows]
    sigs = [fact_signature(a) for a in answers]
    words = [content_words(a) for a in answers]
    neighbours: list[list[int]] = [[] for _ in rows]
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if same_fact(sigs[i], sigs[j], words[i], words[j]):
                neighbours[i].append(j)
                neighbours[j].append(i)
    return neighbours
