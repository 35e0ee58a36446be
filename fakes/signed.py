"""Signed Slack requests over real HTTP, as Slack sends them to POST /slack/events."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

SECRET = "test-signing-secret"
_ids = itertools.count(1)


class SlackSender:
    def __init__(self, url: str, secret: str = SECRET, response_url=None):
        self.url = url
        self.verifier = SignatureVerifier(secret)
        self.response_url = response_url or (lambda: "http://127.0.0.1:9/none")
        self.http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self.http:
            await self.http.close()

    async def send(self, body: str, content_type: str, *, timestamp: int | None = None,
                   signature: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
        self.http = self.http or aiohttp.ClientSession()
        ts = str(timestamp if timestamp is not None else int(time.time()))
        sig = signature or self.verifier.generate_signature(timestamp=ts, body=body)
        hdrs = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
                **(headers or {})}
        async with self.http.post(self.url, data=body.encode(), headers=hdrs) as resp:
            return resp.status, await resp.text()

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None,
                    **kw: Any) -> tuple[int, str]:
        body = json.dumps({"token": "x", "team_id": "TFAKE", "api_app_id": "AFAKE", "type": "event_callback",
                           "event_id": event_id or f"Ev{next(_ids):08d}", "event_time": int(time.time()),
                           "authorizations": [{"user_id": "UFTBOT", "is_bot": True}], "event": event})
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return await self.send(body, "application/json", headers=headers, **kw)

    async def command(self, text: str, user: str, channel: str = "CSUP", **kw: Any) -> tuple[int, str]:
        body = urlencode({"token": "x", "team_id": "TFAKE", "team_domain": "fake", "channel_id": channel,
                          "channel_name": "support", "user_id": user, "user_name": user.lower(),
                          "command": "/ft", "text": text, "response_url": self.response_url(),
                          "trigger_id": f"trig{next(_ids)}", "api_app_id": "AFAKE"})
        return await self.send(body, "application/x-www-form-urlencoded", **kw)

    async def interactive(self, payload: dict[str, Any], **kw: Any) -> tuple[int, str]:
        payload = {"team": {"id": "TFAKE"}, "api_app_id": "AFAKE", "token": "x", **payload}
        return await self.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kw)

    async def action(self, user: str, action_id: str, value: str, *, channel: str = "CSUP",
                     message: dict | None = None, **kw: Any) -> tuple[int, str]:
        return await self.interactive({
            "type": "block_actions", "user": {"id": user}, "trigger_id": f"trig{next(_ids)}",
            "response_url": self.response_url(), "channel": {"id": channel},
            "container": {"type": "message", "channel_id": channel, "message_ts": (message or {}).get("ts", "1.0")},
            "message": message or {"ts": "1.0", "text": ""},
            "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
        }, **kw)

    async def view_submission(self, user: str, callback_id: str, values: dict[str, dict[str, Any]],
                              private_metadata: str = "", **kw: Any) -> tuple[int, str]:
        return await self.interactive({
            "type": "view_submission", "user": {"id": user}, "trigger_id": f"trig{next(_ids)}",
            "view": {"id": "VSUB", "type": "modal", "callback_id": callback_id, "private_metadata": private_metadata,
                     "state": {"values": values}},
        }, **kw)

    async def message_shortcut(self, user: str, callback_id: str, channel: str, message: dict[str, Any],
                               **kw: Any) -> tuple[int, str]:
        return await self.interactive({
            "type": "message_action", "callback_id": callback_id, "user": {"id": user},
            "channel": {"id": channel}, "message": message, "message_ts": message["ts"],
            "trigger_id": f"trig{next(_ids)}", "response_url": self.response_url(),
        }, **kw)
