"""A small fake Slack Web API server (aiohttp, on a free localhost port) for tests and the demo.

It answers the methods the bot calls from a scripted workspace and records every call.
The bot reaches it through slack_sdk's `base_url` (FT_SLACK_API_URL), exactly as it would Slack.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any

from aiohttp import web

from fakes import local_http


class FakeSlack:
    BOT_USER = "UFTBOT"

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)  # channel id → messages
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # The same calls with when they arrived (time.perf_counter()): what a person sees, and when.
        self.timed_calls: list[tuple[float, str, dict[str, Any]]] = []
        # Slack's streaming limits, made small by tests: a stream expires (~5 min on Slack), and its text is capped.
        self.stream_ttl_s = 300.0
        self.stream_max_chars = 40_000
        self.responses: list[dict[str, Any]] = []  # what listeners sent to response_url
        self.views: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        self._clock = time.time() - 86_400
        self._ids = itertools.count(1)
        self._stream_started: dict[str, float] = {}  # a streamed message's ts → when its stream began
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- the scripted workspace -------------------------------------------------------------
    def user(self, uid: str, name: str, *, bot: bool = False) -> "FakeSlack":
        self.users[uid] = {"id": uid, "name": name.lower(), "real_name": name, "is_bot": bot,
                           "profile": {"display_name": name, "real_name": name}}
        return self

    # conversations.info's flags for each kind of channel (bot.slack_api.channel_kind reads them).
    KINDS = {"public": {"is_channel": True}, "private": {"is_channel": False, "is_group": True, "is_private": True},
             "dm": {"is_im": True}, "mpim": {"is_mpim": True, "is_private": True},
             "shared": {"is_channel": True, "is_shared": True, "is_ext_shared": True}, "unknown": {}}

    def channel(self, cid: str, name: str, kind: str | None = None) -> "FakeSlack":
        """kind: public, private, dm, mpim, shared or unknown (no flags); default: dm for a D… id, else public."""
        kind = kind or ("dm" if cid.startswith("D") else "public")
        self.channels[cid] = {"id": cid, "name": name, **self.KINDS[kind]}
        return self

    def edit(self, channel: str, ts: str, text: str) -> dict[str, Any]:
        """Change a message's text as Slack does (with `edited`); returns the message_changed event."""
        message = self.find(channel, ts)
        assert message is not None, ts
        previous = dict(message)
        message["text"] = text
        message["edited"] = {"user": message.get("user"), "ts": self.next_ts()}
        return {"type": "message", "subtype": "message_changed", "channel": channel, "hidden": True,
                "message": dict(message), "previous_message": previous, "ts": self.next_ts(),
                "event_ts": self.next_ts(), "channel_type": "channel"}

    def delete(self, channel: str, ts: str) -> dict[str, Any]:
        """Remove a message as Slack does; returns the message_deleted event."""
        message = self.find(channel, ts)
        assert message is not None, ts
        self.messages[channel].remove(message)
        return {"type": "message", "subtype": "message_deleted", "channel": channel, "hidden": True,
                "deleted_ts": ts, "previous_message": message, "ts": self.next_ts(), "event_ts": self.next_ts(),
                "channel_type": "channel"}

    def next_ts(self) -> str:
        self._clock += 1.000001
        return f"{self._clock:.6f}"

    def post(self, channel: str, user: str, text: str, thread_ts: str | None = None, **extra: Any) -> str:
        ts = self.next_ts()
        message = {"type": "message", "user": user, "text": text, "ts": ts, **extra}
        if thread_ts:
            message["thread_ts"] = thread_ts
            root = self.find(channel, thread_ts)
            if root is not None:
                root["thread_ts"] = thread_ts
                root["reply_count"] = root.get("reply_count", 0) + 1
        self.messages[channel].append(message)
        return ts

    def find(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages[channel] if m["ts"] == ts), None)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        message = self.find(channel, ts)
        if message is None:
            return []
        root_ts = message.get("thread_ts") or message["ts"]
        return sorted((m for m in self.messages[channel] if m["ts"] == root_ts or m.get("thread_ts") == root_ts),
                      key=lambda m: float(m["ts"]))

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def first_call(self, method: str, where=lambda params: True) -> float | None:
        """When the first call to `method` (matching `where`) arrived (time.perf_counter()), or None."""
        return next((at for at, name, params in self.timed_calls if name == method and where(params)), None)

    @staticmethod
    def shown(message: dict[str, Any]) -> str:
        """What a person reads in a message: its text (a stream's markdown so far) and its blocks' text."""
        parts = [message.get("text") or ""]
        for block in message.get("blocks") or []:
            text = block.get("text")
            parts.append(text.get("text", "") if isinstance(text, dict) else text or "")
            parts += [e.get("text", "") for e in block.get("elements") or [] if isinstance(e.get("text"), str)]
        return "\n".join(p for p in parts if p)

    def shown_in(self, channel: str) -> list[str]:
        return [self.shown(m) for m in self.messages[channel]]

    # --- the Web API -----------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body and request.content_type != "multipart/form-data":
            params.update(await request.post())
        for key in ("blocks", "view", "attachments", "files"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        self.calls.append((method, params))
        self.timed_calls.append((time.perf_counter(), method, params))
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(await handler(params))

    async def api_auth_test(self, p: dict) -> dict:
        return {"ok": True, "user_id": self.BOT_USER, "bot_id": "BFTBOT", "team_id": "TFAKE", "user": "ftbot",
                "url": "https://fake.slack.example/"}

    async def api_users_info(self, p: dict) -> dict:
        user = self.users.get(p.get("user", ""))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    async def api_conversations_replies(self, p: dict) -> dict:
        messages = self.thread(p["channel"], p["ts"])
        if not messages:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": messages, "has_more": False, "response_metadata": {"next_cursor": ""}}

    async def api_conversations_info(self, p: dict) -> dict:
        channel = self.channels.get(p.get("channel", ""))
        return {"ok": True, "channel": channel} if channel else {"ok": False, "error": "channel_not_found"}

    async def api_chat_getPermalink(self, p: dict) -> dict:
        return {"ok": True,
                "permalink": f"https://fake.slack.example/archives/{p['channel']}/p{p['message_ts'].replace('.', '')}"}

    async def api_chat_postMessage(self, p: dict) -> dict:
        channel = p["channel"]
        ts = self.post(channel, self.BOT_USER, p.get("text", ""), p.get("thread_ts"), blocks=p.get("blocks"),
                       bot_id="BFTBOT")
        return {"ok": True, "channel": channel, "ts": ts, "message": self.find(channel, ts)}

    async def api_chat_update(self, p: dict) -> dict:
        message = self.find(p["channel"], p["ts"])
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.update({k: p[k] for k in ("text", "blocks") if k in p})
        if message.get("streaming"):
            message["streaming"] = False  # an update ends a stream
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    async def api_chat_delete(self, p: dict) -> dict:
        message = self.find(p.get("channel", ""), p.get("ts", ""))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        self.messages[p["channel"]].remove(message)
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    # --- AI apps: the assistant thread's status, title and suggested prompts; streamed messages -------------------
    def _missing(self, p: dict, *names: str) -> dict | None:
        return {"ok": False, "error": "invalid_arguments"} if any(not p.get(n) for n in names) else None

    async def api_assistant_threads_setStatus(self, p: dict) -> dict:
        return self._missing(p, "channel_id", "thread_ts") or (
            {"ok": False, "error": "invalid_arguments"} if "status" not in p else {"ok": True})

    async def api_assistant_threads_setTitle(self, p: dict) -> dict:
        return self._missing(p, "channel_id", "thread_ts", "title") or {"ok": True}

    async def api_assistant_threads_setSuggestedPrompts(self, p: dict) -> dict:
        prompts = p.get("prompts")
        if not p.get("channel_id") or not isinstance(prompts, list) or not 1 <= len(prompts) <= 4 or any(
                not isinstance(q, dict) or not q.get("title") or not q.get("message") for q in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    async def api_chat_startStream(self, p: dict) -> dict:
        if bad := self._missing(p, "channel", "thread_ts"):
            return bad
        text = p.get("markdown_text") or ""
        if len(text) > min(12_000, self.stream_max_chars):
            return {"ok": False, "error": "msg_too_long"}
        ts = self.post(p["channel"], self.BOT_USER, text, p["thread_ts"], bot_id="BFTBOT", streaming=True,
                       recipient_user_id=p.get("recipient_user_id"))
        self._stream_started[ts] = time.perf_counter()
        return {"ok": True, "channel": p["channel"], "ts": ts}

    def _streaming(self, p: dict) -> tuple[dict | None, dict | None]:
        """The streamed message, or Slack's error for it."""
        if bad := self._missing(p, "channel", "ts"):
            return None, bad
        message = self.find(p["channel"], p["ts"])
        if message is None:
            return None, {"ok": False, "error": "message_not_found"}
        if message.get("streaming") and time.perf_counter() - self._stream_started[p["ts"]] > self.stream_ttl_s:
            message["streaming"] = False  # Slack ends an old stream with what it had
        if not message.get("streaming"):
            return None, {"ok": False, "error": "message_not_in_streaming_state"}
        text = p.get("markdown_text") or ""
        if len(text) > 12_000 or len(message["text"]) + len(text) > self.stream_max_chars:
            return None, {"ok": False, "error": "msg_too_long"}
        return message, None

    async def api_chat_appendStream(self, p: dict) -> dict:
        message, error = self._streaming(p)
        if error:
            return error
        if not p.get("markdown_text"):
            return {"ok": False, "error": "invalid_arguments"}
        message["text"] += p["markdown_text"]
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    async def api_chat_stopStream(self, p: dict) -> dict:
        message, error = self._streaming(p)
        if error:
            return error
        message["text"] += p.get("markdown_text") or ""
        message["streaming"] = False
        if p.get("blocks"):
            message["blocks"] = p["blocks"]
        return {"ok": True, "channel": p["channel"], "ts": p["ts"], "message": dict(message)}

    async def api_chat_postEphemeral(self, p: dict) -> dict:
        return {"ok": True, "message_ts": self.next_ts()}

    async def api_reactions_add(self, p: dict) -> dict:
        message = self.find(p["channel"], p["timestamp"])
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        reactions = message.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == p["name"]), None)
        if entry and self.BOT_USER in entry["users"]:
            return {"ok": False, "error": "already_reacted"}
        if entry is None:
            entry = {"name": p["name"], "users": [], "count": 0}
            reactions.append(entry)
        entry["users"].append(self.BOT_USER)
        entry["count"] += 1
        return {"ok": True}

    async def api_reactions_remove(self, p: dict) -> dict:
        message = self.find(p["channel"], p["timestamp"])
        for entry in (message or {}).get("reactions", []):
            if entry["name"] == p["name"] and self.BOT_USER in entry["users"]:
                entry["users"].remove(self.BOT_USER)
                entry["count"] -= 1
                return {"ok": True}
        return {"ok": False, "error": "no_reaction"}

    async def _view(self, p: dict) -> dict:
        view = dict(p["view"])
        view_id = p.get("view_id") or f"V{next(self._ids):06d}"
        view["id"] = view_id
        self.views[view_id] = view
        return {"ok": True, "view": view}

    api_views_open = api_views_publish = api_views_update = api_views_push = _view

    async def api_files_getUploadURLExternal(self, p: dict) -> dict:
        file_id = f"F{next(self._ids):06d}"
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    async def api_files_completeUploadExternal(self, p: dict) -> dict:
        files = p.get("files") or []
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text="OK")

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append({"id": request.match_info["rid"], **(await request.json())})
        return web.Response(text="ok")

    def response_url(self) -> str:
        return f"{self.url}/response/{next(self._ids)}"

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self, port: int = 0) -> "FakeSlack":
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{rid}", self._response_url)
        self._runner, self.url = await local_http.start(app, port)
        return self

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def wait_for(self, predicate, timeout: float = 15.0):  # a loaded CI machine is slow
        """Poll until predicate() is truthy: listeners run after Slack's ack, in the background."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; calls so far: {[m for m, _ in self.calls]}")
            await asyncio.sleep(0.02)
