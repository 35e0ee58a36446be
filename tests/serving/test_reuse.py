"""serving.answering with reuse (core.reuse), through the real Retriever over a real store and a stub model server:
a close paraphrase gets the approved answer back without a model call, only where the pair may be used; a question
far from every pair is still written by the model."""

from __future__ import annotations

import pytest

from core.contract import ReuseSpec
from core.embedder import Embedder, EmbedderError, find_model_dir
from core.states import ExampleStatus
from serving.answering import answer
from serving.client import ModelClient
from serving.retrieval import Retriever
from storage import audience
from storage.examples import NewExample, add_examples
from tests.model_stub import ModelStub

try:
    find_model_dir()
except EmbedderError as exc:
    pytest.skip(str(exc), allow_module_level=True)

PRIVATE, PUBLIC = "GPRIV", "CPUB"
APPROVED = "Hi Sam, the free trial lasts 21 days and needs no credit card. Cheers, Anna"
CLEANED = "The free trial lasts 21 days and needs no credit card."
PARAPHRASE = "How long is the free trial?"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
async def stub():
    server = await ModelStub().start()
    server.answer = "Something the model wrote."
    yield server
    await server.stop()


def _approve_in_private_channel(store) -> None:
    with store.session() as s:
        audience.remember(s, PRIVATE, "private", "team-billing")
        audience.remember(s, PUBLIC, "public", "support")
        add_examples(s, [NewExample(f"slack:{PRIVATE}:1700000000.000200", "How long does the free trial last?",
                                    APPROVED, status=ExampleStatus.APPROVED, approved_by="ULEAD",
                                    source={"kind": "slack", "channel_id": PRIVATE, "ts": "1700000000.000200"})])


async def _ask(stub, retriever, question, channel, **kw):
    client = ModelClient(stub.url)
    shown: list[str] = []

    async def on_text(piece: str) -> None:
        shown.append(piece)

    try:
        hits = retriever.search(question, channel=channel)
        reply = await answer(client, "base-model", question, hits, system_prompt="Answer.", max_tokens=32,
                             on_text=on_text, **kw)
    finally:
        await client.close()
    return reply, "".join(shown)


async def test_a_close_paraphrase_gets_the_approved_answer_without_asking_the_model(store, embedder, stub):
    _approve_in_private_channel(store)
    retriever = Retriever(store, embedder)
    reply, shown = await _ask(stub, retriever, PARAPHRASE, PRIVATE)
    assert stub.requests == []  # the model server was not asked
    assert reply.text == CLEANED and shown == CLEANED  # a streamed caller still gets the text
    assert reply.reused.approved_by == "ULEAD" and reply.reused.channel_id == PRIVATE
    # Judged as any answer (what auto mode sends): backed by the pair it is.
    assert reply.grounding.send and reply.grounding.source_rank == 1 and not reply.declined


async def test_a_private_channels_pair_is_never_reused_in_another_channel(store, embedder, stub):
    _approve_in_private_channel(store)
    retriever = Retriever(store, embedder)
    for elsewhere in (PUBLIC, None):  # another channel, and a DM
        reply, shown = await _ask(stub, retriever, PARAPHRASE, elsewhere)
        assert reply.reused is None and "21 days" not in reply.text
    assert len(stub.requests) == 2  # the model wrote both (and the grounding check declined them: nothing close)
    assert all("21 days" not in m["content"] for r in stub.requests for m in r["messages"])


async def test_a_question_far_from_every_pair_is_still_written_by_the_model(store, embedder, stub):
    _approve_in_private_channel(store)
    retriever = Retriever(store, embedder)
    reply, shown = await _ask(stub, retriever, "Do you sell hardware barcode scanners?", PRIVATE)
    assert reply.reused is None and len(stub.requests) == 1 and shown == "Something the model wrote."
    # Reuse turned off (FT_REUSE_MIN_SCORE above 1): the model writes even for the close paraphrase, with the pair
    # in front of it.
    reply, _ = await _ask(stub, retriever, PARAPHRASE, PRIVATE, reuse=ReuseSpec(min_score=2.0))
    assert reply.reused is None and len(stub.requests) == 2
    assert "the free trial lasts 21 days" in stub.requests[-1]["messages"][-1]["content"]


async def test_ft_ask_plain_and_json_say_whose_approved_answer_it_gives(store, stub, ft_env, monkeypatch):
    import asyncio
    import json

    from typer.testing import CliRunner

    from ftbot.cli.main import app

    monkeypatch.setenv("FT_MODEL_SERVER_URL", stub.url)
    with store.session() as s:
        audience.remember(s, PUBLIC, "public", "support")
        [(_, ex)] = add_examples(s, [NewExample(f"slack:{PUBLIC}:1700000000.000200", "How long does the free trial "
                                                "last?", APPROVED, status=ExampleStatus.APPROVED, approved_by="ULEAD",
                                                source={"kind": "slack", "channel": "support", "channel_id": PUBLIC,
                                                        "ts": "1700000000.000200"})])
        ex_id = ex.id

    def ask(*args: str):
        return CliRunner().invoke(app, ["ask", PARAPHRASE, *args])

    plain = await asyncio.to_thread(ask)
    assert plain.exit_code == 0, plain.output
    lines = plain.stdout.splitlines()
    assert lines[0] == CLEANED
    assert lines[-1].startswith(f"— the answer ULEAD approved for a similar question (example {ex_id}, #support")
    as_json = await asyncio.to_thread(ask, "--json")
    assert as_json.exit_code == 0, as_json.output
    record = json.loads(as_json.stdout)
    assert record["answer"] == CLEANED and not record["declined"]
    assert (record["reused"]["example_id"], record["reused"]["approved_by"]) == (ex_id, "ULEAD")
    assert record["reused"]["said"] == "the answer ULEAD approved for a similar question"
    assert stub.requests == []  # the model server was asked for its name only, never for an answer
