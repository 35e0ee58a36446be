import pytest

from storage.redact import redact


@pytest.mark.parametrize("text, placeholder", [
    ("write to jana.novak@example.com please", "<email>"),
    ("call +44 20 7946 0958 today", "<phone>"),
    ("or (030) 1234567 at the office", "<phone>"),
    ("my mobile 0151 23456789", "<phone>"),
    ("IBAN DE44 2505 0180 0009 3714 62 on file", "<iban>"),
    ("FR7630004000031234567890143 compact", "<iban>"),
    ("card 4111 1111 1111 1111 expired", "<card>"),
    ("card 4111111111111111 expired", "<card>"),
])
def test_pii_becomes_a_placeholder(text, placeholder):
    redacted, found = redact(text)
    assert placeholder in redacted
    assert found


@pytest.mark.parametrize("text", [
    "Invoice QM-2026-00042 is locked after 72 hours",
    "order #18234 ships on 2026-10-12 at 07:00–19:00 CET",
    "Booking HL-2026-000731, 600 requests per minute, 1.7% + €0.20 per card transaction",
    "version 1.2.3, error QM-E42, €59 per month",
])
def test_ids_amounts_and_dates_stay(text):
    assert redact(text) == (text, [])


def test_control_characters_are_dropped_so_every_database_stores_the_text():
    assert redact("a\x00b\x07c\td\ne") == ("abc\td\ne", [])
