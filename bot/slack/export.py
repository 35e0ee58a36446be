"""Reading a standard Slack workspace export: a folder, or the .zip Slack gives you."""

from __future__ import annotations

import json
import math
import stat
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from core.states import ChannelKind


class ExportError(Exception):
    """A problem with the export, naming the file it is in."""

    def __init__(self, file: str, detail: str):
        super().__init__(f"{file}: {detail}")
        self.file = file


class OverLimit(ExportError):
    """A file, or the export in all, holds more than ReadLimits allows; setting: "file" or "total"."""

    def __init__(self, file: str, detail: str, setting: str):
        super().__init__(file, detail)
        self.setting = setting


@dataclass(frozen=True)
class ReadLimits:
    """How many decompressed bytes one file, and the whole export, may hold. Counted while reading, never taken
    from a zip's declared sizes: a zip bomb is refused after reading no more than the limit."""

    max_file_mb: float
    max_total_mb: float

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 2**20)

    @property
    def max_total_bytes(self) -> int:
        return int(self.max_total_mb * 2**20)


@dataclass
class Export:
    channels: list[dict[str, Any]]
    users: dict[str, dict[str, Any]]
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by channel name
    kinds: dict[str, str] = field(default_factory=dict)  # by channel name: public, private, dm, shared
    days: dict[str, set[str]] = field(default_factory=dict)  # by channel name: the dates ("2026-09-01") it covers

    def kind(self, channel: dict[str, Any]) -> str:
        return self.kinds.get(channel.get("name", ""), ChannelKind.UNKNOWN)
    # Items left out or fields ignored because they do not have Slack's shape: {"file: what": count}.
    skipped: Counter = field(default_factory=Counter)

    def bot_users(self) -> frozenset[str]:
        return frozenset(uid for uid, user in self.users.items() if user.get("is_bot") is True)

    def display_names(self) -> dict[str, str]:
        names = {}
        for uid, user in self.users.items():
            profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
            candidates = (profile.get("display_name"), profile.get("real_name"), user.get("real_name"),
                          user.get("name"))
            names[uid] = next((c for c in candidates if isinstance(c, str) and c), uid)
        return names


class _Source:
    """Uniform reads over a folder or a zip (whose files may sit under one top folder)."""

    CHUNK = 1 << 20

    def __init__(self, path: Path, limits: ReadLimits | None = None):
        self.path = path
        self.limits = limits
        self.total = 0  # decompressed bytes read so far, across files
        if path.is_dir():
            self.zip = None
            self.names = {p.relative_to(path).as_posix() for p in path.rglob("*.json")}
            self.prefix = ""
        elif path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
                self.names = {n for n in self.zip.namelist() if n.endswith(".json")}
            except (zipfile.BadZipFile, OSError) as exc:
                raise ExportError(str(path), f"not a readable Slack export zip ({exc})") from None
            tops = [n for n in self.names if PurePosixPath(n).name == "channels.json"]
            self.prefix = str(PurePosixPath(min(tops, key=len)).parent) + "/" if tops else ""
            self.prefix = "" if self.prefix == "./" else self.prefix
        else:
            raise ExportError(str(path), "no such file or folder")

    def label(self, name: str) -> str:
        return f"{self.path}/{name}" if self.zip is None else f"{self.path}:{self.prefix}{name}"

    def has(self, name: str) -> bool:
        return self.prefix + name in self.names

    def day_files(self, channel: str) -> list[str]:
        if self.zip is None and (self.path / channel).is_symlink():  # rglob would pass it by in silence
            raise ExportError(self.label(channel), f"{channel} is a symbolic link, which is not followed")
        start = self.prefix + channel + "/"
        return sorted(n[len(self.prefix):] for n in self.names
                      if n.startswith(start) and "/" not in n[len(start):])

    def read(self, name: str) -> Any:
        try:
            return json.loads(self._bytes(name))
        except json.JSONDecodeError as exc:
            raise ExportError(self.label(name), f"malformed JSON at line {exc.lineno} ({exc.msg})") from None
        except UnicodeDecodeError as exc:
            raise ExportError(self.label(name), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except RecursionError:
            raise ExportError(self.label(name), "JSON nested too deeply to read") from None
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ExportError(self.label(name), f"cannot be read ({exc})") from None

    def _bytes(self, name: str) -> bytes:
        """The file's bytes, read in chunks and counted against the limits; a symlink is never followed (a day
        file linked to /etc/passwd would be read as the export's), nor anything but a regular file."""
        if self.zip is None:
            path = self.path / name
            for part in [path, *path.parents]:
                if part == self.path:
                    break
                if part.is_symlink():
                    raise ExportError(self.label(name), f"{part.name} is a symbolic link, which is not followed")
            if not path.is_file():
                raise ExportError(self.label(name), "not a regular file")
            opened = open(path, "rb")
        else:
            info = self.zip.getinfo(self.prefix + name)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ExportError(self.label(name), "a symbolic link, which is not followed")
            opened = self.zip.open(info)
        chunks, size = [], 0
        with opened as fh:
            while chunk := fh.read(self.CHUNK):
                size += len(chunk)
                self.total += len(chunk)
                self._check(name, size)
                chunks.append(chunk)
        return b"".join(chunks)

    def _check(self, name: str, size: int) -> None:
        if self.limits is None:
            return
        if size > self.limits.max_file_bytes:
            raise OverLimit(self.label(name), f"over the {self.limits.max_file_mb:g} MB limit for one file", "file")
        if self.total > self.limits.max_total_bytes:
            raise OverLimit(self.label(name), f"the export is over the {self.limits.max_total_mb:g} MB limit "
                                              "for all its files", "total")


def load_export(path: Path | str, channels: list[str] | None = None, limits: ReadLimits | None = None) -> Export:
    """Load the channels (all, or those named) with their messages. Raises ExportError (OverLimit: over `limits`;
    None: no bound, for exports the caller trusts)."""
    src = _Source(Path(path), limits)
    if not src.has("channels.json"):
        raise ExportError(str(path), "channels.json not found: is this a Slack workspace export?")
    all_channels = src.read("channels.json")
    kinds: dict[str, str] = {}  # by channel name: who can read it (storage.audience)
    if isinstance(all_channels, list):
        all_channels = list(all_channels)
        kinds.update(_kinds(all_channels, ChannelKind.PUBLIC))
        # Private channels, DMs and group DMs, in exports that include them (DM folders are named by id).
        for file, kind in (("groups.json", ChannelKind.PRIVATE), ("dms.json", ChannelKind.DM),
                           ("mpims.json", ChannelKind.DM)):
            if src.has(file):
                more = src.read(file)
                if not isinstance(more, list):
                    raise ExportError(src.label(file), "expected a list of channels")
                more = [{**c, "name": c.get("name") or c.get("id")} if isinstance(c, dict) else c for c in more]
                kinds.update(_kinds(more, kind))
                all_channels += more
    if not isinstance(all_channels, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                                     and isinstance(c.get("id", ""), str) for c in all_channels):
        raise ExportError(src.label("channels.json"), "expected a list of channels with names")
    users_raw = src.read("users.json") if src.has("users.json") else []
    if not isinstance(users_raw, list):
        raise ExportError(src.label("users.json"), "expected a list of users")
    skipped: Counter = Counter()
    users = {}
    for user in users_raw:
        if not (isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"]):
            skipped["users.json: a user without an id (left out)"] += 1
            continue
        if user.get("profile") is not None and not isinstance(user["profile"], dict):
            skipped["users.json: a profile that is no object (its name is not used)"] += 1
        users[user["id"]] = user

    known = {c["name"]: c for c in all_channels}
    wanted = list(dict.fromkeys(channels)) if channels else list(known)
    unknown = [name.lstrip("#") for name in wanted if name.lstrip("#") not in known]
    if unknown:
        raise ExportError(src.label("channels.json"),
                          f"no channel named {', '.join(unknown)} (channels: {', '.join(sorted(known))})")
    export = Export(channels=[known[name.lstrip("#")] for name in wanted], users=users, kinds=kinds,
                    skipped=skipped)
    for channel in export.channels:
        messages: list[dict[str, Any]] = []
        export.days[channel["name"]] = {PurePosixPath(day).stem for day in src.day_files(channel["name"])}
        for day in src.day_files(channel["name"]):
            data = src.read(day)
            if not isinstance(data, list):
                raise ExportError(src.label(day), "expected a list of messages")
            for item in data:
                message, problem = _slack_message(item)
                if problem:
                    export.skipped[f"{channel['name']}/: {problem}"] += 1
                if message is not None:
                    messages.append(message)
        export.messages[channel["name"]] = messages
    return export


def _kinds(channels: list[Any], kind: str) -> dict[str, str]:
    """Each channel's kind: the file it is listed in, unless it is shared with another organisation."""
    out = {}
    for c in channels:
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            shared = c.get("is_ext_shared") or c.get("is_shared")
            out[c["name"]] = ChannelKind.SHARED if shared else kind
    return out
def _is_ts(value: object) -> bool:
    """A Slack timestamp: "1726000000.000100"."""
    try:
        return isinstance(value, str) and math.isfinite(float(value))
    except ValueError:
        return False


def _slack_message(item: object) -> tuple[dict[str, Any] | None, str | None]:
    """(the message with only fields of Slack's shape, what was wrong); None when it cannot be used at all.
    Items without a ts (a day file's non-messages) are left out silently, as before."""
    if not isinstance(item, dict) or not item.get("ts"):
        return None, None
    if not _is_ts(item["ts"]) or ("thread_ts" in item and item["thread_ts"] is not None
                                  and not _is_ts(item["thread_ts"])):
        return None, "a message whose ts is no Slack timestamp (left out)"
    message, problem = dict(item), None
    for key in ("text", "user", "subtype"):
        if message.get(key) is not None and not isinstance(message[key], str):
            message.pop(key)
            problem = f"a message whose {key} is no text (ignored)"
    reactions = message.get("reactions")
    if reactions is not None:
        good = [r for r in reactions if isinstance(r, dict) and isinstance(r.get("name"), str)
                and (r.get("users") is None or (isinstance(r["users"], list)
                                                and all(isinstance(u, str) for u in r["users"])))] \
            if isinstance(reactions, list) else []
        if not isinstance(reactions, list) or len(good) != len(reactions):
            problem = "reactions that are no list of {name, users} (ignored)"
        message["reactions"] = good
    return message, problem
