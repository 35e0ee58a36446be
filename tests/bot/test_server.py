"""`ft bot`'s HTTP surface: health, metrics, no secrets in logs; the Slack app manifest."""

import asyncio
import json
import logging
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import yaml

from fakes.signed import SECRET
from ftbot import logs
from tests.bot.conftest import AGENT, ASKER, OTHER, listener_runs, settled

ROOT = Path(__file__).resolve().parents[2]


async def test_healthz_and_metrics(bot):
    root = bot.slack.post("CSUP", ASKER, "q?")
    answer = bot.slack.post("CSUP", AGENT, "a.", thread_ts=root)
    await bot.send.event({"type": "reaction_added", "user": OTHER, "reaction": "white_check_mark",
                          "item": {"type": "message", "channel": "CSUP", "ts": answer}})
    await bot.slack.wait_for(lambda: bot.slack.calls_to("reactions.add"))
    async with aiohttp.ClientSession() as http:
        async with http.get(bot.url + "/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["ok"] is True
        async with http.get(bot.url + "/metrics") as resp:
            text = await resp.text()
    assert resp.status == 200 and "text/plain" in resp.headers["Content-Type"]
    assert 'ftbot_examples{status="candidate"} 1.0' in text
    assert 'ftbot_slack_requests_total{kind="label",outcome="created"} 1.0' in text


async def test_readyz_names_the_model_server_when_it_is_down_and_shows_no_secret(store, model_stub):
    """/healthz is liveness (200 while the process serves); /readyz asks the model server and the database."""
    from bot.server import serve_http
    from fakes.fake_slack import FakeSlack
    from ftbot import wiring
    from tests.bot.conftest import bot_settings

    slack = await FakeSlack().start()
    model_stub.api_key = "sk-model-secret"
    app, deps, metrics = wiring.bot(bot_settings(slack, model_stub.url, model_server_api_key="sk-model-secret"),
                                    store=store)
    runner, bot_url = await serve_http(app, deps, metrics)
    secrets = ("sk-model-secret", "xoxb-test-token", SECRET, model_stub.url, str(store.engine.url))

    async def get(path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(bot_url + path) as resp:
            return resp.status, await resp.text()

    try:
        status, text = await get("/readyz")
        body = json.loads(text)
        assert status == 200 and body["ok"] is True, text
        assert body["model_server"] == {"ok": True, "base_model": "base-model"} and body["database"]["ok"] is True
        assert "deployed_version" in body and body["ftbot"]
        assert not [s for s in secrets if s in text]
        await model_stub.stop()
        status, text = await get("/readyz")
        body = json.loads(text)
        assert status == 503 and body["ok"] is False and body["database"]["ok"] is True, text
        assert body["model_server"]["ok"] is False
        assert ["model server unreachable" in r for r in body["reasons"]] == [True]
        assert not [s for s in secrets if s in text]
        assert await get("/healthz") == (200, '{"ok": true}')  # still alive: a restart would not bring the model back
    finally:
        await runner.cleanup()
        await slack.stop()


async def test_tokens_never_reach_the_logs(bot, capsys):
    """With the logging `ft bot` installs, at DEBUG, slack_sdk's request logs show no token or secret."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup("DEBUG", secrets=["xoxb-test-token", SECRET])
        logging.getLogger("ftbot.test").info("config: token=%s secret=%s", "xoxb-test-token", SECRET)
        await bot.send.command("status", OTHER)
        await bot.send.event({"type": "reaction_added", "user": OTHER, "reaction": "white_check_mark",
                              "item": {"type": "message", "channel": "CSUP", "ts": "1.0"}})
        await bot.slack.wait_for(lambda: bot.slack.calls_to("conversations.replies"))
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "slack_sdk" in err or "slack_bolt" in err  # debug logging really ran
    assert "xoxb-test-token" not in err and SECRET not in err
    assert "token=xoxb-***" in err


def test_manifest_declares_what_the_bot_handles():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == {"app_home_opened", "app_mention", "message.im", "reaction_added", "reaction_removed",
                      "message.channels", "message.groups", "message.mpim",  # edits and deletions (bot.changes)
                      "app_context_changed"}  # the agent view (bot.agent)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ft"]
    assert manifest["features"]["slash_commands"][0]["should_escape"] is True  # `/ft forget @user` gets the id
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == ["add_to_training"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"reactions:read", "reactions:write", "channels:history", "chat:write", "commands", "users:read",
            "app_mentions:read", "im:history", "files:write"} <= scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # The agent view (bot.agent): its pane, a thread's status and suggestions need assistant:write.
    agent_view = manifest["features"]["agent_view"]
    assert agent_view["agent_description"] and "assistant:write" in scopes
    assert 1 <= len(agent_view["suggested_prompts"]) <= 4
    assert all(p["title"] and p["message"] for p in agent_view["suggested_prompts"])




def _sign(raw: bytes, timestamp: str, secret: str = SECRET) -> str:
    import hashlib
    import hmac

    return "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()


async def _post(url: str, raw: bytes, *, content_type: str = "application/json", timestamp: str | None = None,
                signed: bool = True, signature: str | None = None) -> tuple[int, str]:
    ts = str(int(time.time())) if timestamp is None else timestamp
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts}
    if signed or signature:
        headers["X-Slack-Signature"] = signature or _sign(raw, ts)
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/slack/events", data=raw, headers=headers) as resp:
            return resp.status, await resp.text()


def _examples(store) -> int:
    from sqlmodel import func, select

    from storage.models import Example

    with store.session() as s:
        return s.exec(select(func.count()).select_from(Example)).one()


BAD_BODIES = [b"not json", b"\xff\xfe\x00 invalid utf-8", b"[1, 2, 3]", b"[" * 100_000, b"{\"type\": ",
              b"payload=%5B1%2C2%5D", b"payload=not-json", b"\"a string\"", b"null"]


async def test_bad_requests_get_401_or_400_and_no_traceback(bot, store, caplog):
    """Unsigned junk is refused before its body is read (401); signed junk gets 400; nothing is logged with
    a traceback and nothing is stored."""
    before = _examples(store)
    caplog.set_level(logging.DEBUG)
    for raw in BAD_BODIES:
        for content_type in ("application/json", "application/x-www-form-urlencoded"):
            assert (await _post(bot.url, raw, content_type=content_type, signed=False))[0] == 401, raw[:20]
            assert (await _post(bot.url, raw, content_type=content_type, signature="v0=" + "0" * 64))[0] == 401
            status, body = await _post(bot.url, raw, content_type=content_type)
            if raw == b"\xff\xfe\x00 invalid utf-8":  # Slack signs UTF-8 text; slack_sdk's verifier reads no other
                assert status == 401
            elif content_type == "application/json" or raw.startswith(b"payload="):
                assert (status, body) == (400, '{"ok": false, "error": "malformed_body"}'), raw[:20]
            else:  # form fields no listener knows: Bolt's own 404
                assert status in (400, 404), raw[:20]
    for timestamp in ("soon", "", "1e9", "١٢٣", "-5", str(int(time.time()) - 301)):
        raw = b'{"type": "url_verification", "challenge": "c"}'
        assert (await _post(bot.url, raw, timestamp=timestamp, signature=_sign(raw, timestamp)))[0] == 401, timestamp
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert _examples(store) == before
    # A good request still goes through.
    raw = b'{"type": "url_verification", "token": "x", "challenge": "c"}'
    assert await _post(bot.url, raw) == (200, '{"challenge": "c"}')


async def test_a_malformed_url_verification_gets_400(bot):
    """Slack's URL check sends a string challenge; none, an empty one or another type is no Slack request."""
    for body in ({"type": "url_verification", "token": "x"}, {"type": "url_verification", "challenge": None},
                 {"type": "url_verification", "challenge": ""}, {"type": "url_verification", "challenge": {"a": 1}},
                 {"type": "url_verification", "challenge": ["c"]}, {"type": "url_verification", "challenge": 7}):
        assert await _post(bot.url, json.dumps(body).encode()) == (400, '{"ok": false, "error": "malformed_body"}')
    raw = b'{"type": "url_verification", "token": "x", "challenge": "c"}'
    assert await _post(bot.url, raw) == (200, '{"challenge": "c"}')


async def test_any_request_gets_a_4xx_or_an_ack_never_a_500(bot, store, caplog):
    """Property-based: whatever bytes and headers arrive, signed or not, the endpoint answers 2xx or 4xx,
    logs no traceback, and a refused request stores nothing."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    caplog.set_level(logging.DEBUG)
    json_ish = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                            lambda children: st.lists(children, max_size=4)
                            | st.dictionaries(st.sampled_from(["type", "event", "payload", "command", "user",
                                                               "channel", "text", "event_id", "actions"])
                                              | st.text(max_size=8),
                                              children, max_size=4), max_leaves=12)
    fields = {k: json_ish for k in ("user", "channel", "item", "text", "ts", "thread_ts", "reaction", "tab")}
    events = st.fixed_dictionaries({"type": st.just("event_callback"), "event_id": st.text(max_size=6),
                                    "event": st.fixed_dictionaries({"type": st.sampled_from(
                                        ["reaction_added", "reaction_removed", "app_mention", "message",
                                         "app_home_opened"])}, optional=fields)})
    payloads = st.fixed_dictionaries({"type": st.sampled_from(["block_actions", "view_submission", "message_action",
                                                               "shortcut"])},
                                     optional={"user": json_ish, "actions": json_ish, "view": json_ish,
                                               "message": json_ish, "callback_id": json_ish, "channel": json_ish})
    bodies = st.one_of(st.binary(max_size=300), json_ish.map(lambda v: json.dumps(v).encode()),
                       json_ish.map(lambda v: ("payload=" + quote(json.dumps(v))).encode()),
                       events.map(lambda v: json.dumps(v).encode()),
                       payloads.map(lambda v: ("payload=" + quote(json.dumps(v))).encode()))

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=bodies, signed=st.booleans(), content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain"]),
        timestamp=st.one_of(st.none(), st.integers(0, 2**40).map(str),
                            st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12)))
    def probe(raw: bytes, signed: bool, content_type: str, timestamp: str | None) -> None:
        before = _examples(store)
        statuses.append(status := asyncio.run_coroutine_threadsafe(
            _post(bot.url, raw, content_type=content_type, timestamp=timestamp, signed=signed), loop).result(30)[0])
        assert status < 500, (raw[:80], signed, timestamp)
        if status >= 400:
            assert _examples(store) == before

    loop, statuses = asyncio.get_running_loop(), []
    await asyncio.to_thread(probe)
    assert len(statuses) >= 50 and {400, 401} <= set(statuses), sorted(set(statuses))
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info][:3]


async def test_any_signature_header_gets_401_never_a_500(bot, store, caplog):
    """The signature and timestamp headers in any encoding (a non-ASCII signature made the hand-written check raise
    inside hmac.compare_digest: 500 and a traceback, without authentication) are refused with 401."""
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    caplog.set_level(logging.DEBUG)
    raw = b'{"type": "url_verification", "token": "x", "challenge": "c"}'
    header_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=80)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(signature=header_text, timestamp=st.one_of(st.none(), header_text))
    @example(signature="v0=ü", timestamp=None)
    @example(signature="v0=" + "é" * 64, timestamp=None)
    @example(signature="v0=" + "0" * 64, timestamp="١٢٣")
    def probe(signature: str, timestamp: str | None) -> None:
        status = asyncio.run_coroutine_threadsafe(
            _post(bot.url, raw, timestamp=timestamp, signature=signature, signed=False), loop).result(30)[0]
        statuses.append(status)
        assert status == 401, (signature, timestamp, status)

    loop, statuses = asyncio.get_running_loop(), []
    await asyncio.to_thread(probe)
    assert len(statuses) >= 30
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert await _post(bot.url, raw) == (200, '{"challenge": "c"}')  # a signed request still goes through


async def test_the_bot_asks_the_model_server_with_its_key(store):
    """FT_MODEL_SERVER_API_KEY reaches the bot's model client through ftbot.wiring: a server that requires it
    answers the bot's question; one with another key refuses, and the bot still replies in one sentence."""
    from bot.server import serve_http
    from fakes.fake_slack import FakeSlack
    from fakes.signed import SlackSender
    from ftbot import wiring
    from tests.bot.conftest import bot_settings
    from tests.model_stub import ModelStub

    for server_key, outcome in (("bot-key-1", "answered"), ("another-key", "refused")):
        stub = await ModelStub(api_key=server_key).start()
        slack = FakeSlack().channel("CSUP", "support")
        slack.user(ASKER, "Mia")
        await slack.start()
        app, deps, metrics = wiring.bot(bot_settings(slack, stub.url, model_server_api_key="bot-key-1"), store=store)
        runner, url = await serve_http(app, deps, metrics)
        send = SlackSender(url + "/slack/events", response_url=slack.response_url)
        try:
            ts = f"{time.time():.6f}"
            await send.event({"type": "app_mention", "user": ASKER, "text": "<@UFTBOT> how long is the trial?",
                              "ts": ts, "channel": "CSUP", "event_ts": ts})
            posts = await slack.wait_for(lambda slack=slack: slack.calls_to("chat.postMessage"))
            if outcome == "answered":
                assert stub.requests and stub.refused == 0 and posts
            else:
                assert not stub.requests and stub.refused >= 1 and posts  # the bot still says something
        finally:
            await send.close()
            await runner.cleanup()
            await slack.stop()
            await stub.stop()


async def test_settled_waits_for_a_listener_still_running_after_the_ack(bot):
    # The negative tests' settled() sees Bolt's listener runs: were it blind (a Bolt upgrade renaming them), it would
    # return at once and those tests would pass without checking anything. This fails instead.
    bot.model.delay_s = 0.5
    ts = bot.slack.post("CSUP", ASKER, "<@UFTBOT> how long is the trial?")
    status, _ = await bot.send.event({"type": "app_mention", "user": ASKER, "text": "<@UFTBOT> how long is the trial?",
                                      "ts": ts, "channel": "CSUP", "event_ts": ts})
    assert status == 200 and listener_runs()  # acked; the answer waits on the model
    await settled(bot)
    assert not listener_runs() and len(bot.model.requests) == 1
    assert "21 days" in json.dumps(bot.slack.calls)
