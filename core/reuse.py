"""A correction teaches at once: when an approved answer fits a new question closely, the bot gives that answer.

The 135M model re-writes an approved answer it is shown and loses its numbers on the way; repeating the team's
own words cannot. So before the model is asked (serving.answering), the retrieved pairs are looked at:

- only the best hit may be reused (any other is a neighbour's answer), and only when its cosine reaches
  `min_score` (core.contract.REUSE, measured by bench/reuse.py). The hits are the retriever's for the asking
  channel, so the audience rules (storage.audience) are those of retrieval, with nothing restated here;
- its answer was written to another customer: greetings, thanks, apologies and the names they address
  ("Hi Sam,", "Sorry to hear that, Dara.", "Thanks Priya!", "Cheers, Anna") are taken off its ends;
- what cannot be taken off safely means it is not reused: a redacted detail of that customer (<email>,
  <phone>, <iban>, <card>), a mention of a person, a name addressed in the middle of a sentence ("That's
  done now, Dara."), or a reference of theirs that the earlier question gave and the answer repeats
  ("QM-2026-00088 was sent more than 72 hours ago").

Pure functions of text and scores: the bench, the bot and `ft ask` decide here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from core.contract import GROUNDING, REUSE, GroundingSpec
from core.facts import codes, numbers
from core.grounding import Grounding, judge

# Redaction's placeholders (storage.redact): a detail of the customer the answer was written to.
PLACEHOLDER = re.compile(r"<(?:email|phone|iban|card)>")
MENTION = re.compile(r"<[@!][^>]*>|(?<![\w.])@[A-Za-z][\w.-]*")  # <@U123>, <!here>, @sam
# A leading or trailing clause ends at one of these (the mark is part of the clause).
CLAUSE = re.compile(r"[^,.!?:;—–\n]*(?:[,.!?:;—–\n]+|$)")
# How a short clause that talks to the person rather than states the answer begins: at the start of an answer a
# greeting, thanks or an apology for an earlier reply in that thread; at its end a sign-off.
OPENING = re.compile(
    r"(?:hi|hello|hey|hiya|dear|greetings|good (?:morning|afternoon|evening|day)|thanks|thank you|many thanks|thx"
    r"|cheers|sorry|apologies|my apologies|apologi[sz]e|my (?:mistake|bad)|oops|you(?:'|’| a)re (?:right|welcome)"
    r"|correction|good (?:catch|news|question|point)|great question|no (?:worries|problem)|of course|sure"
    r"|absolutely|glad|happy to|welcome|found it|ah|oh|ok|okay)\b", re.IGNORECASE)
# After an apology: what it apologises for ("Sorry, I mixed that up —").
SELF_CORRECTION = re.compile(r"\b(?:mistake|wrong|mixed|confusion|confusing|vague|delay|wait|earlier|above|typo)\b",
                             re.IGNORECASE)
CLOSING = re.compile(
    r"(?:hope (?:this|that|it) helps|let (?:me|us) know|any (?:other|more|further) questions|anything else"
    r"|feel free|have a (?:great|nice|good|lovely)|cheers|best|regards|kind regards|thanks|thank you"
    r"|happy to help|glad to help|enjoy|good luck|bye|talk soon|take care)\b", re.IGNORECASE)
SOCIAL_MAX_WORDS = 8  # a longer clause says something about the product
NAME = re.compile(r"[A-Z][a-zà-ÿ'’-]+(?: [A-Z][a-zà-ÿ'’-]+)?")
NOT_NAMES = {"yes", "no", "sure", "okay", "ok", "yep", "nope", "done", "great", "perfect", "correct", "right", "true"}
# "…, Dara." in the middle: a name addressed to the earlier customer that cannot be taken out of its sentence (after
# a lowercase word: "in Stockholm, Sweden." and "Solo, Studio." are places and lists).
VOCATIVE = re.compile(r"\b([a-z][\w'’]*),\s*[A-Z][a-zà-ÿ'’-]+\s*[!?.](?:\s|$)")
ID_DIGITS = re.compile(r"\d{5,}|[A-Z].*\d{4,}|\d{4,}.*[A-Z]")  # QM-2026-00088, 1234567: a reference, not an amount


@dataclass(frozen=True)
class Reuse:
    """The approved pair to give as the answer, and its answer cleaned for the new customer."""

    hit: Any  # what the retriever returned (serving.retrieval.Hit): .question, .answer, .score
    text: str


def reusable(hits: Sequence[Any] | None, *, min_score: float = REUSE.min_score) -> Reuse | None:
    """The best retrieved pair, when it fits the question closely enough to be the answer itself (hits: best first,
    already limited to what the asking channel may use); None: the model writes."""
    if not hits or hits[0].score < min_score:
        return None
    text = cleaned(hits[0].answer, hits[0].question)
    return Reuse(hits[0], text) if text else None


def reused_answer(question: str, hits: Sequence[Any] | None, *, min_score: float = REUSE.min_score,
                  grounding: GroundingSpec = GROUNDING) -> tuple[Reuse, Grounding] | None:
    """The approved answer the bot gives as it is (reusable()), with its grounding verdict, when the check passes it
    as it would pass the model's (auto mode sends only what it passes); None: the model writes. The bot, `ft ask`
    (serving.answering) and the trainer's checkpoint scores (trainer.checkpoint) decide here."""
    chosen = reusable(hits, min_score=min_score)
    if chosen is None:
        return None
    verdict = judge(question, chosen.text, [(h.answer, h.score) for h in hits or ()], min_score=grounding.min_score,
                    max_gap=grounding.max_gap)
    return (chosen, verdict) if verdict.send else None


def cleaned(answer: str, question: str = "") -> str | None:
    """The answer without what was said to the customer it was written for (its first and last clauses of
    greeting, thanks, apology or sign-off, and the names they address); None when it cannot be reused safely
    (see the module's doc). question: the earlier customer's, whose own details the answer must not repeat."""
    text = answer.strip()
    if not text or PLACEHOLDER.search(text) or MENTION.search(text) or _repeats_their_details(text, question):
        return None
    clauses = [c for c in CLAUSE.findall(text) if c.strip()]
    start = _social_prefix(clauses)  # nothing left after them: the answer only greeted (None below)
    end = max(start, len(clauses) - _social_suffix(clauses[start:]))
    body = "".join(clauses[start:end]).strip()
    if not body or VOCATIVE.search(body) or not re.search(r"\w", body):
        return None
    return body[0].upper() + body[1:]


def _words(clause: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", clause.lower())


def _short(clause: str) -> bool:
    return 0 < len(_words(clause)) <= SOCIAL_MAX_WORDS and not re.search(r"\d", clause)


def _opening(clause: str, after_social: bool) -> bool:
    said = clause.strip()
    return _short(said) and (bool(OPENING.match(said)) or (after_social and bool(SELF_CORRECTION.search(said))))


def _closing(clause: str) -> bool:
    return _short(clause) and bool(CLOSING.match(clause.strip()))


def _name_only(clause: str) -> bool:
    """A clause that is only a name ("Dara." after "Sorry to hear that,")."""
    bare = clause.strip().rstrip(",.!?:;—– ")
    return bool(NAME.fullmatch(bare)) and bare.lower() not in NOT_NAMES


def _social_prefix(clauses: list[str]) -> int:
    """How many leading clauses greet, thank, apologise or only name the person."""
    n = 0
    while n < len(clauses):
        clause = clauses[n]
        if _opening(clause, n > 0) or (n > 0 and _name_only(clause) and clauses[n - 1].rstrip().endswith(",")):
            n += 1  # "Sorry to hear that, Dara."
        elif (_name_only(clause) and clause.rstrip().endswith(",") and n + 1 < len(clauses)
              and clauses[n + 1].lstrip()[:1].islower()):
            n += 1  # "Dara, the trial lasts 21 days." (not "Studio, Agency and Solo …")
        else:
            break
    return n


def _social_suffix(clauses: list[str]) -> int:
    """How many trailing clauses sign off ("Hope that helps!", "Cheers, Anna")."""
    n = 0
    while n < len(clauses):
        clause = clauses[len(clauses) - 1 - n]
        before = clauses[len(clauses) - 2 - n] if n + 2 <= len(clauses) else ""
        if _name_only(clause) and _closing(before):
            n += 2  # "Cheers, Anna"
        elif _closing(clause):
            n += 1
        else:
            break
    return n


def _repeats_their_details(answer: str, question: str) -> bool:
    """The answer repeats a reference the earlier question gave: an invoice or order number (a code with a long run
    of digits, or a long number), not an error code or an amount."""
    if not question:
        return False
    shared = (codes(answer) & codes(question)) | (numbers(answer) & numbers(question))
    return any(ID_DIGITS.search(c) for c in shared)
