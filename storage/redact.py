"""PII redaction, applied to every text before it is stored.

E-mail addresses, phone numbers, IBANs and card numbers become placeholders. Invoice, order
and booking ids (QM-2026-00042, #18234) are what support answers are about, so they stay.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Country code, check digits, then 11–30 letters/digits, printed in groups of four.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
# Starts with +, ( or 0 so that years, amounts and ids are left alone; 7–15 digits in all.
_PHONE = re.compile(r"(?<![\w-])(?:\+\d{1,3}|\(0?\d{1,4}\)|0\d{1,4})(?:[ ./-]?\(?\d{1,4}\)?){1,5}(?![\w-])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    grouped = bool(re.fullmatch(r"\d{4}([ -])\d{4}\1\d{4}\1\d{4}", text))
    return "<card>" if grouped or _luhn_ok(digits) else text


def _phone(match: re.Match[str]) -> str:
    n = sum(ch.isdigit() for ch in match.group(0))
    return "<phone>" if 7 <= n <= 15 else match.group(0)


# NUL and the other C0 controls but tab and newlines: PostgreSQL refuses NUL in text, and none is meant.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def redact(text: str) -> tuple[str, list[str]]:
    """Return the text with PII replaced, and the kinds that were found (for the record).

    Every text is stored through here, so it also drops control characters (a model's or a paste's).
    """
    found: list[str] = []
    text = _CONTROL.sub("", text)
    for kind, pattern, repl in (
        ("email", _EMAIL, "<email>"),
        ("iban", _IBAN, "<iban>"),
        ("card", _CARD, _card),
        ("phone", _PHONE, _phone),
    ):
        new = pattern.sub(repl, text)
        if new != text:
            found.append(kind)
            text = new
    return text, found
