"""`ft bot` stopped by SIGTERM while a draft is being generated: it exits within FT_SHUTDOWN_GRACE_S (and a little),
and the next start answers the draft it left (issue 27)."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from fakes.fake_slack import FakeSlack
from fakes.signed import SECRET, SlackSender
from tests.bot.conftest import ADMIN, ASKER
from tests.model_stub import ModelStub

FT = shutil.which("ft", path=str(Path(sys.executable).parent))
GRACE_S = 1.0
DRAFTS = "CDRAFTS"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _start(env: dict[str, str], url: str) -> subprocess.Popen:
    log = open(Path(env["FT_DATA_DIR"]) / "bot.log", "a")  # a file, not a pipe: a full pipe would stall the bot
    proc = subprocess.Popen([FT, "bot"], env=env, stdout=log, stderr=log, text=True)
    deadline = time.monotonic() + 90  # a guard against a hang, not a speed test: a loaded CI core starts it slowly
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, _log(env)
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("ft bot did not start")


def _log(env: dict[str, str]) -> str:
    return (Path(env["FT_DATA_DIR"]) / "bot.log").read_text()


def _cards(slack: FakeSlack) -> list[dict]:
    return [m for m in slack.messages[DRAFTS] if m.get("bot_id") and not m.get("text", "").startswith("Drafting")]


async def test_sigterm_mid_generation_exits_within_the_grace_and_the_draft_is_answered_after_restart(tmp_path):
    slack = FakeSlack().channel("CSUP", "support").channel(DRAFTS, "support-drafts")
    slack.user(ADMIN, "Ada").user(ASKER, "Mia")
    await slack.start()
    model = await ModelStub().start()
    model.delay_s = 5.0  # outlasts the grace and the exit bound (the stub waits for it when it stops)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PORT": str(port), "FT_DATA_DIR": str(tmp_path), "FT_DATABASE_URL": "",
           "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET, "FT_SLACK_API_URL": slack.api_url,
           "SLACK_APP_TOKEN": "", "FT_MODEL_SERVER_URL": model.url, "FT_MODEL_SERVER_API_KEY": "",
           "FT_ADMINS": ADMIN, "FT_RETRIEVAL": "false", "FT_ANSWER_TIMEOUT_S": "60",
           "FT_SHUTDOWN_GRACE_S": str(GRACE_S)}
    send = SlackSender(url + "/slack/events", response_url=slack.response_url)
    assert subprocess.run([FT, "init"], env=env, capture_output=True, timeout=60).returncode == 0
    proc = await _start(env, url)
    try:
        status, _ = await send.command(f"channel mode draft <#{DRAFTS}|support-drafts>", ADMIN)
        assert status == 200, _log(env)
        await slack.wait_for(lambda: any("draft" in r.get("text", "") for r in slack.responses))
        ts = slack.post("CSUP", ASKER, "How long is the trial?")
        status, _ = await send.event({"type": "message", "channel_type": "channel", "channel": "CSUP",
                                      "user": ASKER, "text": "How long is the trial?", "ts": ts, "event_ts": ts})
        assert status == 200
        await slack.wait_for(lambda: model.requests)  # the draft is being generated
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 15)
        took = time.monotonic() - started
        stderr = _log(env)
        assert took < GRACE_S + 3.0, (took, stderr)
        assert code == 0 and "Traceback" not in stderr, stderr
        assert _cards(slack) == []  # the draft was left unanswered
        model.delay_s = 0.0
        proc = await _start(env, url)
        cards = await slack.wait_for(lambda: _cards(slack))
        assert "21 days" in slack.shown(cards[0]), cards
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 15)
        await send.close()
        await model.stop()
        await slack.stop()
