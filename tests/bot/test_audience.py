"""Who may see what: a pair from a public channel answers everywhere; one from a private, shared, DM or unknown
channel only in that channel, and is trained into the shared adapter only once an admin marks the channel
shareable. Asked in every kind of channel, each shareable or not, on SQLite and PostgreSQL: the pairs retrieval
returns, the links the reply shows, the examples the training snapshot holds."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.contract import RetrievalSpec, ReuseSpec
from core.embedder import Embedder, EmbedderError, find_model_dir
from core.states import ExampleStatus
from serving.retrieval import Retriever
from storage import audience
from storage.examples import NewExample, add_examples
from storage.models import ChannelChange, ModelVersion
from storage.snapshots import create_snapshot, snapshot_rows
from tests.bot.conftest import ADMIN, ASKER

try:
    find_model_dir()
except EmbedderError as exc:
    pytest.skip(str(exc), allow_module_level=True)

# channel id -> (kind the fake Slack reports, plan named in its pair). CUNK: Slack says nothing of it.
CHANNELS = {"CPUB": ("public", "Basic"), "GPRIV": ("private", "Team"), "CSHR": ("shared", "Pro"),
            "DMIA": ("dm", "Enterprise"), "CUNK": ("unknown", "Partner")}
ELSEWHERE = "DOTHER"  # another person's DM: holds no pair
QUESTION = "How long is the free trial?"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()  # loaded once for the module: the matrix asks many questions


def _expected(asked_in: str | None, shareable: bool) -> tuple[set[str], set[str]]:
    """(channels whose pair may be used, channels whose thread may be linked), written out by hand from the rule."""
    usable, linked = set(), set()
    for cid, (kind, _) in CHANNELS.items():
        if kind == "public" or shareable or cid == asked_in:
            usable.add(cid)
        if kind == "public" or cid == asked_in:
            linked.add(cid)
    return usable, linked


def _seed(bot, store) -> None:
    for cid, (kind, plan) in CHANNELS.items():
        bot.slack.channel(cid, f"ch-{plan.lower()}", kind)
    bot.slack.channel(ELSEWHERE, "dm", "dm")
    with store.session() as s:
        for cid, (kind, _) in CHANNELS.items():
            if kind != "unknown":
                audience.remember(s, cid, kind, f"ch-{CHANNELS[cid][1].lower()}")  # as the bot records it
    with store.session() as s:
        # As a ✅ stores them: the channel's kind comes from what ftbot recorded (none for CUNK: unknown).
        add_examples(s, [NewExample(
            f"slack:{cid}:1700000000.00020{n}", f"How long is the free trial of the {plan} plan?",
            f"The {plan} plan's free trial lasts 14 days.", status=ExampleStatus.APPROVED, approved_by="UCURATOR",
            source={"kind": "slack", "channel": f"ch-{plan.lower()}", "channel_id": cid,
                    "ts": f"1700000000.00020{n}", "thread_ts": f"1700000000.00010{n}", "asker": ASKER})
            for n, (cid, (_, plan)) in enumerate(CHANNELS.items())])


async def _ask(bot, channel: str) -> set[str]:
    """Ask in `channel` over signed HTTP; the channels the reply links to."""
    # A DM is answered streamed (bot.agent): its answer ends with chat.stopStream, whose blocks hold the links.
    method = "chat.stopStream" if channel.startswith("D") else "chat.postMessage"
    before = len(bot.slack.calls_to(method))
    if channel.startswith("D"):
        ts = bot.slack.post(channel, ASKER, QUESTION)
        event = {"type": "message", "channel_type": "im", "channel": channel, "user": ASKER, "text": QUESTION,
                 "ts": ts, "event_ts": ts}
    else:
        ts = bot.slack.post(channel, ASKER, f"<@UFTBOT> {QUESTION}")
        event = {"type": "app_mention", "user": ASKER, "text": f"<@UFTBOT> {QUESTION}", "ts": ts, "channel": channel,
                 "event_ts": ts}
    status, _ = await bot.send.event(event)
    assert status == 200
    posts = await bot.slack.wait_for(lambda: len(bot.slack.calls_to(method)) > before and bot.slack.calls_to(method))
    post = posts[before]
    text = bot.slack.find(channel, post["ts"])["text"] if method == "chat.stopStream" else post["text"]
    assert post["channel"] == channel and "14 days" in text
    context = " ".join(e.get("text", "") for b in post["blocks"] if b["type"] == "context" for e in b["elements"])
    return set(re.findall(r"/archives/([A-Z0-9]+)/p", context))


def _snapshot_channels(store) -> set[str]:
    with store.session() as s:
        snap, _ = create_snapshot(s, val_percent=0)
        return {row.source_key.split(":")[1] for row in snapshot_rows(s, snap.id)}


async def _mark(bot, channel: str, on: bool, user: str = ADMIN) -> str:
    """`/ft channel share on|off` typed in `channel`; the ephemeral reply."""
    before = len(bot.slack.responses)
    status, body = await bot.send.command(f"channel share {'on' if on else 'off'}", user, channel=channel)
    assert status == 200
    if body:  # a refusal comes in the ack itself
        return body
    await bot.slack.wait_for(lambda: len(bot.slack.responses) > before)
    return bot.slack.responses[-1]["text"]


async def test_permission_matrix(bot, store, embedder):
    _seed(bot, store)
    bot.deps.retriever = Retriever(store, embedder, RetrievalSpec(k=len(CHANNELS)))  # room for every pair
    bot.model.answer = "The free trial lasts 14 days."  # what every pair says: the answer is sent, with its links
    bot.deps.reuse = ReuseSpec(min_score=2.0)  # the model writes (a reused answer links its own pair: test_reuse)

    for shareable in (False, True):
        if shareable:
            for cid in CHANNELS:
                await _mark(bot, cid, True)
        for asked_in in [*CHANNELS, ELSEWHERE, None]:
            usable, linked = _expected(asked_in, shareable)
            hits = bot.deps.retriever.search(QUESTION, channel=asked_in)
            assert {h.channel_id for h in hits} == usable, (asked_in, shareable)
            if asked_in is not None:  # None is `ft ask` without --channel: no Slack reply to look at
                assert await _ask(bot, asked_in) == linked, (asked_in, shareable)
        trained = _snapshot_channels(store)
        assert trained == ({*CHANNELS} if shareable else {"CPUB"}), shareable

    # The marks were recorded with who set them.
    with store.session() as s:
        marks = list(s.exec(select(ChannelChange).where(ChannelChange.field == "shareable")))
    assert len(marks) == len(CHANNELS) and {m.by for m in marks} == {ADMIN}


async def test_a_mark_taken_back_flags_the_versions_trained_with_it_and_review_shows_what_moved(bot, store, embedder):
    _seed(bot, store)
    await _mark(bot, "GPRIV", True)
    with store.session() as s:
        snap, _ = create_snapshot(s, val_percent=0)
        assert {r.source_key.split(":")[1] for r in snapshot_rows(s, snap.id)} == {"CPUB", "GPRIV"}
        s.add(ModelVersion(name="ft-1-v1", snapshot_id=snap.id))
        s.add(ModelVersion(name="ft-0-v0"))  # trained on nothing of GPRIV's: not flagged

    before = len(bot.slack.responses)
    status, _ = await bot.send.command("review", "UCURATOR")
    reply = await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])
    assert "<#GPRIV> marked shareable" in reply["text"] and "1 approved pair(s) usable everywhere" in reply["text"]

    reply = await _mark(bot, "GPRIV", False)
    assert "ft-1-v1" in reply and "no longer shareable" in reply and "1 approved pair(s)" in reply
    assert _snapshot_channels(store) == {"CPUB"}
    assert {h.channel_id for h in Retriever(store, embedder).search(QUESTION, channel=None)} == {"CPUB"}

    runner = CliRunner()
    from ftbot.cli.main import app

    result = runner.invoke(app, ["versions", "list"], env={"FT_DATABASE_URL": store.url, "COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if "ft-1-v1" in row)
    assert "trained on a channel no longer shareable" in line
    assert "no longer" not in next(row for row in result.output.splitlines() if "ft-0-v0" in row)

    # Only admins set marks.
    assert "Only admins" in await _mark(bot, "GPRIV", True, user="UCURATOR")
    with store.session() as s:
        assert not audience.scope(s, None).allows("private", "GPRIV")


async def test_ft_ask_channel_answers_as_in_that_channel(store, model_stub):
    import asyncio
    import json

    from ftbot.cli.main import app

    with store.session() as s:
        audience.remember(s, "GPRIV", "private", "team")
        audience.remember(s, "CPUB", "public", "general")
        add_examples(s, [
            NewExample("slack:GPRIV:1.2", "How long is the free trial of the Team plan?", "It lasts 14 days.",
                       status=ExampleStatus.APPROVED, source={"kind": "slack", "channel_id": "GPRIV", "ts": "1.2"}),
            NewExample("slack:CPUB:1.2", "How long is the free trial of the Basic plan?", "It lasts 7 days.",
                       status=ExampleStatus.APPROVED, source={"kind": "slack", "channel_id": "CPUB", "ts": "1.2"})])

    def ask(*extra: str) -> set[str]:
        result = CliRunner().invoke(app, ["ask", QUESTION, "--json", *extra],
                                    env={"FT_DATABASE_URL": store.url, "FT_MODEL_SERVER_URL": model_stub.url})
        assert result.exit_code == 0, result.output
        return {c["source_key"].split(":")[1] for c in json.loads(result.stdout)["context"]}

    # `ft ask` runs its own event loop: off this test's.
    assert await asyncio.to_thread(ask, "--channel", "GPRIV") == {"GPRIV", "CPUB"}
    assert await asyncio.to_thread(ask) == {"CPUB"}  # without --channel: as in a DM
    assert await asyncio.to_thread(ask, "--channel", "CPUB") == {"CPUB"}


def test_corrections_and_the_curators_answers_take_the_audience_of_the_channel_asked_in(store):
    from storage.feedback import answer, correct, record

    with store.session() as s:
        audience.remember(s, "GPRIV", "private", "team")
        asked = [record(s, question=f"Where is the {w} report?", answer="", user=ASKER, version_name=None,
                        source={"channel": channel}, declined=True)
                 for w, channel in (("sales", "GPRIV"), ("tax", "GPRIV"), ("audit", "CNEW"))]
        _, _, corrected = correct(s, asked[0].id, "Under Reports > Sales.", "UAGENT")
        _, _, answered = answer(s, asked[1].id, "Under Reports > Tax.", "UCURATOR")
        _, _, unknown = answer(s, asked[2].id, "Under Reports > Audit.", "UCURATOR")  # a channel never seen
        found = [(e.channel_id, e.audience) for e in (corrected, answered, unknown)]
    assert found == [("GPRIV", "private"), ("GPRIV", "private"), ("CNEW", "unknown")]
    with store.session() as s:  # ... and when Slack later says CNEW is public, its pairs follow
        audience.remember(s, "CNEW", "public", "new")
        assert audience.scope(s, None).allows(s.get(type(unknown), unknown.id).audience, "CNEW")


def test_the_migration_fills_the_audience_of_existing_examples(fresh_db_url):
    """0005 on a store at 0004: the channel from each example's source, its kind where ftbot knows it, else unknown."""
    import json

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from storage.db import MIGRATIONS, make_engine

    engine = make_engine(fresh_db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def upgrade(to: str) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, to)

    upgrade("0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO slackchannel (id, name, kind, mode, shareable, created_at, updated_at) VALUES "
                          "('GPRIV', 'team', 'private', 'mention', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        for n, source in enumerate(({"channel_id": "GPRIV"}, {"channel_id": "CELSE"}, {})):
            conn.execute(text("INSERT INTO example (source_key, dedup_key, question, answer, status, flags, source, "
                              "created_at, updated_at) VALUES (:k, :k, 'q', 'a', 'approved', '[]', :s, "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"k": f"k{n}", "s": json.dumps(source)})
    upgrade("head")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source_key, channel_id, audience FROM example ORDER BY source_key")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("k0", "GPRIV", "private"), ("k1", "CELSE", "unknown"), ("k2", None, "unknown")]


async def test_slack_versions_shows_the_flags(bot, store):
    with store.session() as s:
        v = ModelVersion(name="ft-2-v1")
        audience.add_version_flag(v, "erased_data", "contains erased data: …")
        s.add(v)
    before = len(bot.slack.responses)
    await bot.send.command("versions", ASKER)
    await bot.slack.wait_for(lambda: len(bot.slack.responses) > before)
    assert "ft-2-v1" in bot.slack.responses[-1]["text"] and "contains erased data" in bot.slack.responses[-1]["text"]
