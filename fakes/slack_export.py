"""Build small Slack workspace exports for tests, shaped like the real thing."""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class ExportBuilder:
    def __init__(self, start: float = 1_790_000_000.0):
        self.clock = start
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, str] = {}
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def user(self, uid: str, display: str, *, bot: bool = False) -> "ExportBuilder":
        self.users[uid] = {"id": uid, "name": display.lower(), "real_name": display, "is_bot": bot,
                           "profile": {"display_name": display, "real_name": display}}
        return self

    def channel(self, name: str, cid: str) -> "ExportBuilder":
        self.channels[name] = cid
        return self

    def _ts(self) -> str:
        self.clock += 37.123457
        return f"{self.clock:.6f}"

    def thread(self, channel: str, asker: str, question: str, replies: list[tuple]) -> list[str]:
        """replies: (user, text) or (user, text, [reactors]) or (user, text, [reactors], extra fields)."""
        root_ts = self._ts()
        root = {"type": "message", "user": asker, "text": question, "ts": root_ts, "thread_ts": root_ts,
                "reply_count": len(replies), "replies": []}
        self.messages[channel].append(root)
        tss = [root_ts]
        for reply in replies:
            user, text = reply[:2]
            reactors = reply[2] if len(reply) > 2 else []
            extra = reply[3] if len(reply) > 3 else {}
            ts = self._ts()
            message = {"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": root_ts,
                       "parent_user_id": asker, **extra}
            if reactors:
                message["reactions"] = [{"name": "white_check_mark", "users": reactors, "count": len(reactors)}]
            root["replies"].append({"user": user, "ts": ts})
            self.messages[channel].append(message)
            tss.append(ts)
        return tss

    def message(self, channel: str, user: str, text: str, **extra: Any) -> str:
        ts = self._ts()
        self.messages[channel].append({"type": "message", "user": user, "text": text, "ts": ts, **extra})
        return ts

    def files(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "channels.json": [{"id": cid, "name": name, "members": list(self.users)}
                              for name, cid in self.channels.items()],
            "users.json": list(self.users.values()),
        }
        for channel, messages in self.messages.items():
            by_day: dict[str, list] = defaultdict(list)
            for m in messages:
                day = datetime.fromtimestamp(float(m["ts"]), timezone.utc).strftime("%Y-%m-%d")
                by_day[day].append(m)
            for day, ms in by_day.items():
                out[f"{channel}/{day}.json"] = ms
        return out

    def write_dir(self, path: Path) -> Path:
        for name, data in self.files().items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return path

    def write_zip(self, path: Path, top: str = "") -> Path:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in self.files().items():
                zf.writestr(top + name, json.dumps(data, ensure_ascii=False))
        return path


def support_workspace() -> ExportBuilder:
    """A small #support channel with one case of everything the importer must handle."""
    b = (ExportBuilder().channel("support", "CSUP").channel("random", "CRND")
         .user("UCURATOR", "Cora").user("UAGENT", "Aaron").user("UCUST1", "Mia").user("UCUST2", "Noor")
         .user("UBOT", "statusbot", bot=True))
    b.thread("support", "UCUST1", "How long is the trial?", [
        ("UAGENT", "<@UCUST1> The trial lasts *21 days*.", ["UCURATOR"]),
    ])
    b.thread("support", "UCUST2", "what does the Solo plan cost", [
        ("UAGENT", "Solo is €9 a month, see <https://ex.example/pricing|pricing>.", ["UAGENT"]),
    ])
    b.thread("support", "UCUST1", "Export to DATEV?", [("UCUST1", "oh found it under Reports", ["UCUST1"])])
    b.thread("support", "UCUST2", "is it down?", [("UAGENT", ":+1:", ["UCURATOR"])])
    b.thread("support", "UCUST1", "status page?", [("UBOT", "All systems operational", ["UCURATOR"])])
    b.thread("support", "UCUST2", "My card was charged twice", [
        ("UCUST2", "it's for invoice QM-2026-00042, mail me at noor@example.com or +44 20 7946 0958"),
        ("UAGENT", "Refunded to IBAN DE44 2505 0180 0009 3714 62 for QM-2026-00042; "
                   "card 4111 1111 1111 1111 untouched.", ["UCURATOR"]),
    ])
    b.thread("support", "UCUST1", "no label here", [("UAGENT", "an unlabelled reply")])
    b.thread("support", "UCUST1", "root labelled", [])
    b.messages["support"][-1]["reactions"] = [{"name": "white_check_mark", "users": ["UCURATOR"], "count": 1}]
    b.message("support", "UCUST1", "", subtype="channel_join")
    b.thread("random", "UCUST1", "lunch?", [("UAGENT", "pizza", ["UCURATOR"])])
    return b
