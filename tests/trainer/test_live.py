"""Live evaluation: a version awaiting approval answers the newest questions the team answered, as the bot asks,
and is judged against what the team sent (SQLite and PostgreSQL, the tiny model, real retrieval)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from core.contract import VersionMetrics
from core.embedder import Embedder, EmbedderError, find_model_dir
from core.states import DraftStatus, ExampleStatus, VersionStatus
from serving.retrieval import Retriever
from storage.examples import NewExample, add_examples
from storage.jobs import enqueue
from storage.models import Draft, Example, ModelVersion, SlackChannel
from tests.trainer.conftest import ROWS
from trainer.job import run_training
from trainer.live import LIVE_MAX, live_drafts, live_questions

try:
    find_model_dir()
except EmbedderError as exc:
    pytest.skip(str(exc), allow_module_level=True)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def _channels(session) -> None:
    session.add_all([SlackChannel(id="CPUB", name="support", kind="public", mode="draft"),
                     SlackChannel(id="CPRIV", name="acme-private", kind="private", mode="draft"),
                     SlackChannel(id="CSHARE", name="beta-private", kind="private", mode="draft", shareable=True),
                     SlackChannel(id="CCONN", name="acme-connect", kind="shared", mode="auto")])


def _draft(n: int, channel: str, status: str, question: str, sent: str | None, **kw) -> Draft:
    return Draft(mode="draft", channel_id=channel, question_ts=f"{1790000000 + n}.000100", question=question,
                 status=status, answer="a draft", sent_text=sent, asked_at=T0 + timedelta(minutes=n), **kw)


def _drafts(session) -> list[str]:
    """Drafts of every kind; returns the questions that count, newest first."""
    session.add_all([
        _draft(1, "CPUB", DraftStatus.SENT, "How long is the free trial?", "The trial lasts 21 days."),
        _draft(2, "CPUB", DraftStatus.EDITED, "What does QM-E42 mean on my bank page?",
               "QM-E42 means the bank link expired: press Reconnect.", edit_chars=12),
        _draft(3, "CSHARE", DraftStatus.SUPERSEDED, "Where can I change my invoice address?",
               "Settings, then Billing, then Address."),
        _draft(4, "CPUB", DraftStatus.EDITED, "Do you have a plan for big teams?", "Yes: Enterprise.",
               declined=True),  # the bot declined; an agent answered
        # Not the team's final answer, or a channel whose knowledge stays there: left out.
        _draft(5, "CPUB", DraftStatus.PENDING, "Can I pay by invoice?", None),
        _draft(6, "CPUB", DraftStatus.DISCARDED, "hello?", None, discard_reason="not_a_question"),
        _draft(7, "CPUB", DraftStatus.EXPIRED, "Is there an API?", None),
        _draft(8, "CPRIV", DraftStatus.SENT, "What is our custom contract price?", "€4,000 a year."),
        _draft(9, "CCONN", DraftStatus.SENT, "Any news on our ticket?", "Fixed in 2.3."),
        _draft(10, "CUNKNOWN", DraftStatus.SENT, "How do I reset my password?", "Use the link on the sign-in page."),
    ])
    return ["Do you have a plan for big teams?", "Where can I change my invoice address?",
            "What does QM-E42 mean on my bank page?", "How long is the free trial?"]


def test_only_answered_questions_of_shareable_channels_count_newest_first_at_most_fifty(store):
    with store.session() as s:
        _channels(s)
        expected = _drafts(s)
    with store.session() as s:
        assert [d.question for d in live_drafts(s)] == expected
        assert [d.question for d in live_drafts(s, limit=2)] == expected[:2]
    with store.session() as s:
        s.add_all([_draft(100 + i, "CPUB", DraftStatus.SENT, f"Question {i}?", f"Answer {i}.") for i in range(55)])
    with store.session() as s:
        found = live_drafts(s)
    assert len(found) == LIVE_MAX == 50 and found[0].question == "Question 54?" and found[-1].question == "Question 5?"


def test_a_live_question_is_asked_without_its_own_answer_in_the_index(store, embedder, tiny_cfg):
    """At the time of asking, the pair the team's answer became did not exist: the bot could not have retrieved it."""
    with store.session() as s:
        _channels(s)
        add_examples(s, [NewExample(f"slack:C1:{i}.0", q, a, status=ExampleStatus.APPROVED)
                         for i, (q, a) in enumerate(ROWS)])
        own = s.exec(select(Example).where(Example.question == ROWS[0][0])).one()
        s.add(_draft(1, "CPUB", DraftStatus.SENT, ROWS[0][0], ROWS[0][1], example_id=own.id))
    Retriever(store, embedder).sync()
    with store.session() as s:
        live = live_questions(s, tiny_cfg, embedder=embedder)
    assert live.questions == [ROWS[0][0]] and live.team == [ROWS[0][1]] and live.trained == 0
    pairs = [(q, a) for q, a, _ in live.hits[0]]
    assert ROWS[0] not in pairs and pairs[0] == ROWS[1]  # its own pair left out; the other phrasing found first
    user_turn = live.prompts[0][-1]["content"]
    assert ROWS[1][1] in user_turn and user_turn.endswith(f"Question: {ROWS[0][0]}")  # as the bot asks


@pytest.mark.slow
def test_a_version_awaiting_approval_carries_live_figures(store, tiny_cfg, tmp_path, caplog):
    caplog.set_level("INFO", logger="ftbot.trainer")
    with store.session() as s:
        add_examples(s, [NewExample(f"slack:C1:{i}.0", q, a, status=ExampleStatus.APPROVED, approved_by="UCUR")
                         for i, (q, a) in enumerate(ROWS)])
        _channels(s)
        expected = _drafts(s)
        job_id = enqueue(s, {}, "UCUR").id

    version_id = run_training(store, job_id, tiny_cfg, tmp_path, val_percent=50)

    with store.session() as s:
        version = s.get(ModelVersion, version_id)
        m = VersionMetrics.from_json(version.metrics)
    live = m.live
    assert live.n == len(expected) == 4 and live.deployed_name is None  # nothing deployed: the base model stands in
    for side in (live.deployed, live.new):
        assert side.agrees + side.other + side.declined + side.unchecked == live.n
    assert 1 <= len(live.examples) <= 3 and {e.question for e in live.examples} <= set(expected)
    for e in live.examples:
        assert e.team and e.new_outcome in ("agrees", "other", "declined", "unchecked")
        assert (e.new_outcome == "declined") == e.new.startswith("I don't know")

    # The next job compares with the deployed version on the same questions.
    with store.session() as s:
        s.get(ModelVersion, version_id).status = VersionStatus.DEPLOYED
        job2 = enqueue(s, {}, "UCUR").id
    second = run_training(store, job2, tiny_cfg, tmp_path, val_percent=50)
    with store.session() as s:
        m2 = VersionMetrics.from_json(s.get(ModelVersion, second).metrics)
    assert m2.live.n == 4 and m2.live.deployed_name == version.name
    assert sum(m2.live.deployed.model_dump().values()) == sum(m2.live.new.model_dump().values()) == 4
    # Answered by the models the held-out evaluation had loaded: none was loaded again for it.
    assert "live evaluation: 4 question(s)" in caplog.text and "loading" not in caplog.text


def test_metrics_written_before_live_evaluation_still_load():
    old = VersionMetrics().to_json()
    del old["live"]
    assert VersionMetrics.from_json(old).live.n == 0 and VersionMetrics.from_json(old).live.new is None


def test_models_the_evaluation_did_not_load_are_loaded_for_the_live_questions(tiny_cfg, tiny_base, tmp_path):
    """When the held-out evaluation reused cached answers of a model, the live questions still get its answers."""
    from fakes.tiny_model import make_lora_adapter
    from trainer.live import LiveQuestions

    adapter = make_lora_adapter(tiny_base, tmp_path / "new", seed=1)
    live = LiveQuestions([q for q, _ in ROWS[:2]], [a for _, a in ROWS[:2]], [[], []], trained=1,
                         system_prompt=tiny_cfg.system_prompt, max_new_tokens=tiny_cfg.max_new_tokens)
    assert live.hook(None) is not None and live.compared == "base"
    result = live.judge(tiny_cfg, adapter, None)
    assert set(live.answers) == {"base", "new"} and result.n == 2 and result.n_trained == 1
    assert result.deployed_name is None and len(result.examples) == 2
    for side in (result.deployed, result.new):  # nothing retrieved: the bot declines whatever the model says
        assert side.declined == 2 and side.agrees + side.other + side.unchecked == 0
