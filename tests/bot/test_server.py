"""`ft bot`'s HTTP surface: health, metrics, no secrets in logs; the Slack app manifest."""

import logging
import time
from pathlib import Path

import aiohttp
import yaml

from ftbot import logs
from tests.signed import SECRET
from tests.bot.conftest import AGENT, ASKER, OTHER

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
                      "message.channels", "message.groups", "message.mpim"}  # edits and deletions (bot.changes)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ft"]
    assert manifest["features"]["slash_commands"][0]["should_escape"] is True  # `/ft forget @user` gets the id
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == ["add_to_training"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"reactions:read", "reactions:write", "channels:history", "chat:write", "commands", "users:read",
            "app_mentions:read", "im:history", "files:write"} <= scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


