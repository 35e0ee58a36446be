"""The prompt's shape as a streamed answer meets it: what of a partial answer may be shown (core.prompt)."""

import pytest

from core.prompt import settled_answer, without_echo


@pytest.mark.parametrize("said,shown", [
    ("", ""), ("Q", ""), ("Q: how long is the", ""), ("Q: how long is the trial?\n", ""),
    ("Q: how long is the trial?\nA: 21", "21"), ("A", ""), ("A:", ""), ("A: 21 days", "21 days"),
    ("A monthly pass", "A monthly pass"), ("The trial lasts ", "The trial lasts "),
])
def test_a_partial_answer_shows_only_what_survives_the_echo_cut(said, shown):
    assert settled_answer(said) == shown
    # and what it shows is never taken back: the whole answer starts with it
    assert without_echo(said + " more words.").startswith(shown.strip())
