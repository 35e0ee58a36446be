"""Erasure in the data folder's files (`ft forget-user`, `/ft forget`): every file under FT_DATA_DIR is read, its
JSON, JSONL, text, gzip and zip members rewritten without the person, or named as left where that cannot be done.

Slack exports, loose or zipped, are handled by shape: the person's messages and their users.json entry go whole,
their id leaves member lists, replies and reactions; their names (gathered from their users.json entries and
`user_profile` blocks) and their texts are erased wherever else they appear. A file is rewritten atomically (a
temporary file in its folder, fsync, os.replace) with its mode kept. A file that holds a trace of them but cannot
be parsed or rewritten (a binary, a zip member of another kind, invalid JSON) is left as it is and reported.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ERASED = "[erased]"
MIN_TEXT = 4  # a shorter "text" (an emoji, "ok") would erase the same letters in everyone's files
TEXT_SUFFIXES = (".txt", ".csv", ".md", ".log")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_NAME_KEYS = ("name", "real_name", "display_name", "real_name_normalized", "display_name_normalized", "first_name",
              "last_name", "email", "phone", "title")
_SQLITE = b"SQLite format 3\x00"
_SIDECARS = ("-wal", "-shm", "-journal")


class Unrewritable(ValueError):
    """A file (or zip member) that holds a trace of the person but that this module cannot rewrite."""


@dataclass
class FileScrub:
    changed: list[str] = field(default_factory=list)  # rewritten without them, relative to the data folder
    left: list[str] = field(default_factory=list)  # "path: why", still holding a trace of them


@dataclass
class _Person:
    user_id: str
    texts: list[str]  # longest first: a text before its parts
    names: set[str] = field(default_factory=set)
    _names_re: re.Pattern | None = None

    def names_re(self) -> re.Pattern | None:
        if self._names_re is None and self.names:
            alts = sorted(self.names, key=len, reverse=True)
            self._names_re = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alts)) + r")(?!\w)")
        return self._names_re

    def traces(self) -> list[bytes]:
        """What a grep for them looks for in a file's bytes (UTF-8, and as JSON escapes non-ASCII text)."""
        out = {self.user_id.encode()}
        for t in (*self.texts, *self.names):
            out.add(t.encode("utf-8"))
            out.add(json.dumps(t)[1:-1].encode())
            out.add(json.dumps(t, ensure_ascii=False)[1:-1].encode("utf-8"))
        return sorted(out, key=len, reverse=True)

    def scrub_text(self, s: str) -> str:
        for t in self.texts:
            if t in s:
                s = s.replace(t, ERASED)
        if self.user_id in s:
            s = s.replace(self.user_id, ERASED)
        pattern = self.names_re()
        return pattern.sub(ERASED, s) if pattern is not None else s


def scrub_files(data_dir: Path, texts: set[str], user_id: str, database: Path | None = None) -> FileScrub:
    """Erase the person from every file under data_dir, but `database` and its sidecars (compact() rewrites
    those). Returns the files changed and the files left (relative to data_dir)."""
    person = _person(texts, user_id)
    result = FileScrub()
    root = Path(data_dir)
    files = list(_files(root, database))
    for path in files:  # first their names, from every export: a day file names them in another folder
        _gather_names(path, person)
    for path in files:
        rel = str(path.relative_to(root))
        try:
            if _scrub_file(path, person):
                result.changed.append(rel)
        except Unrewritable as exc:
            result.left.append(f"{rel}: {exc}")
        except OSError as exc:
            result.left.append(f"{rel}: cannot be rewritten ({exc.strerror or type(exc).__name__})")
    return result


def files_mention(data_dir: Path, user_id: str, database: Path | None = None) -> bool:
    """Some file under data_dir (a zip's members and a gzip's content included) holds the id."""
    needle = user_id.encode()
    for path in _files(Path(data_dir), database):
        try:
            if _grep(path, [needle]) or (path.name.lower().endswith((".zip", ".gz"))
                                         and any(needle in data for _, data in _contents(path))):
                return True
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            continue
    return False


# --- walking the folder -----------------------------------------------------------------------------------------

def _person(texts: set[str], user_id: str) -> _Person:
    kept = {t.strip() for t in texts if t and len(t.strip()) >= MIN_TEXT}
    # and as JSON escapes them, for a text file that holds JSON (a log line)
    kept |= {v for t in kept for v in (json.dumps(t)[1:-1], json.dumps(t, ensure_ascii=False)[1:-1])}
    return _Person(user_id, sorted(kept, key=len, reverse=True))


def _files(root: Path, database: Path | None) -> Iterator[Path]:
    """Plain files, symlinks not followed (a link may point outside the data folder), the store's database and
    its sidecars skipped."""
    skip = set()
    if database is not None:
        skip = {str(Path(database).resolve()) + s for s in ("", *_SIDECARS)}
    if not root.is_dir():
        return
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or str(path.resolve()) in skip:
                continue
            if name.startswith(".") and name.endswith(".tmp"):  # a rewrite of ours that died half-way
                continue
            yield path


def _contents(path: Path) -> Iterator[tuple[str, bytes]]:
    """A file's readable contents: a zip's members, a gzip's text, or the bytes themselves."""
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, zf.read(info)
    elif name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            yield path.name[:-3], fh.read()
    else:
        yield path.name, path.read_bytes()


def _gather_names(path: Path, person: _Person) -> None:
    """Their names, from users.json entries with their id and user_profile blocks of their messages."""
    try:
        for member, data in _contents(path):
            if member.lower().endswith(JSON_SUFFIXES) and person.user_id.encode() in data:
                for value in _json_values(member, data):
                    _names_in(value, person)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RecursionError):
        return  # read again by the scrub, which names it if it holds them


def _json_values(name: str, data: bytes) -> Iterator[Any]:
    text = data.decode("utf-8-sig")
    if name.lower().endswith(".json"):
        yield json.loads(text)
    else:
        yield from (json.loads(line) for line in text.splitlines() if line.strip())


def _names_in(value: Any, person: _Person) -> None:
    if isinstance(value, dict):
        if value.get("id") == person.user_id or value.get("user") == person.user_id:
            for block in (value, value.get("profile"), value.get("user_profile")):
                if isinstance(block, dict):
                    person.names.update(v.strip() for k, v in block.items()
                                        if k in _NAME_KEYS and isinstance(v, str) and len(v.strip()) >= 3)
        for v in value.values():
            _names_in(v, person)
    elif isinstance(value, list):
        for v in value:
            _names_in(v, person)


# --- one file ---------------------------------------------------------------------------------------------------

def _scrub_file(path: Path, person: _Person) -> bool:
    """Rewrite path without the person; True if it changed. Raises Unrewritable where it holds them and cannot."""
    name = path.name.lower()
    with path.open("rb") as fh:
        head = fh.read(16)
    if name.endswith(".zip") or (head.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path)):
        return _scrub_zip(path, person)
    if name.endswith(".gz") or head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        except (OSError, EOFError) as exc:
            return _unless_traces(path, f"not a readable gzip file ({exc})", person)
        inner = path.name[:-3] if name.endswith(".gz") else path.name
        new = _scrub_member(inner, data, person)
        if new is None:
            return False
        buf = io.BytesIO()
        with gzip.GzipFile(filename=inner, mode="wb", fileobj=buf, mtime=int(path.stat().st_mtime)) as gz:
            gz.write(new)
        _replace(path, buf.getvalue())
        return True
    if head.startswith(_SQLITE) or name.endswith(_SIDECARS):
        return _unless_traces(path, "a database ftbot does not use; its pages cannot be rewritten here", person)
    new = _scrub_member(path.name, path.read_bytes(), person)
    if new is None:
        return False
    _replace(path, new)
    return True


def _unless_traces(path: Path, why: str, person: _Person) -> bool:
    if _grep(path, person.traces()):
        raise Unrewritable(why)
    return False


def _scrub_member(name: str, data: bytes, person: _Person) -> bytes | None:
    """New bytes of a file (or zip member) named `name`, or None when nothing of theirs is in it. Raises
    Unrewritable for a kind it cannot rewrite that holds a trace of them."""
    lower = name.lower()
    if lower.endswith(JSON_SUFFIXES):
        try:
            text = data.decode("utf-8-sig")
            if lower.endswith(".json"):
                value = json.loads(text)
                new_value = _scrub_json(value, person)
                if new_value == value:
                    return None
                if new_value is _DROP:  # the whole file was their record
                    new_value = type(value)()
                indent = 2 if "\n" in text.strip() else None
                return json.dumps(new_value, ensure_ascii=False, indent=indent).encode("utf-8")
            lines, changed = [], False
            for line in text.splitlines(keepends=True):
                if not line.strip():
                    lines.append(line)
                    continue
                value = json.loads(line)
                new_value = _scrub_json(value, person)
                if new_value != value:
                    changed = True
                    if new_value is _DROP:
                        continue
                    line = json.dumps(new_value, ensure_ascii=False) + ("\n" if line.endswith("\n") else "")
                lines.append(line)
            return "".join(lines).encode("utf-8") if changed else None
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            if not any(t in data for t in person.traces()):
                return None
            raise Unrewritable(f"not valid JSON ({type(exc).__name__}), so it cannot be rewritten safely") from None
    if lower.endswith(TEXT_SUFFIXES):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            new = person.scrub_text(text)
            return None if new == text else new.encode("utf-8")
    if any(t in data for t in person.traces()):
        raise Unrewritable("a kind of file erasure cannot rewrite (not JSON, JSONL or text)")
    return None


_DROP = object()  # a JSON record that goes whole (their message, their users.json entry)


def _scrub_json(value: Any, person: _Person) -> Any:
    uid = person.user_id
    if isinstance(value, dict):
        if value.get("user") == uid and ("text" in value or value.get("type") == "message"):
            return _DROP  # their message
        if value.get("id") == uid and ({"profile", "real_name", "name"} & value.keys()):
            return _DROP  # their users.json entry (or a profile block that is theirs)
        out = {}
        for k, v in value.items():
            if k == uid:
                continue
            new = _scrub_json(v, person)
            if new is _DROP:
                continue
            # keys lose the id only: a name ("support") may also be a key of everyone's records
            out[k.replace(uid, ERASED) if isinstance(k, str) else k] = new
        if isinstance(out.get("users"), list) and "count" in out and out["users"] != value.get("users"):
            out["count"] = len(out["users"])  # a reaction they were one of
        return out
    if isinstance(value, list):
        out_list = []
        for v in value:
            if v == uid:
                continue  # a member list, reply_users, a reaction's users
            new = _scrub_json(v, person)
            if new is not _DROP:
                out_list.append(new)
        return out_list
    if isinstance(value, str):
        return person.scrub_text(value)
    return value


def _scrub_zip(path: Path, person: _Person) -> bool:
    """A zip (a Slack export): each member rewritten, all or nothing; a member it cannot rewrite that holds them
    leaves the whole zip as it is."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return _unless_traces(path, f"not a readable zip ({exc})", person)
    members: list[tuple[zipfile.ZipInfo, bytes]] = []
    changed = False
    with zf:
        for info in zf.infolist():
            try:
                data = b"" if info.is_dir() else zf.read(info)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, ValueError) as exc:
                raise Unrewritable(f"member {info.filename}: cannot be read ({exc})") from None  # encrypted, unknown
            if stat.S_ISLNK(info.external_attr >> 16):
                if any(t in data for t in person.traces()):
                    raise Unrewritable(f"member {info.filename}: a symlink")
                new = None
            else:
                try:
                    new = None if info.is_dir() else _scrub_member(info.filename, data, person)
                except Unrewritable as exc:
                    raise Unrewritable(f"member {info.filename}: {exc}") from None
            if new is not None:
                changed = True
            members.append((info, data if new is None else new))
    if not changed:
        return False
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info, data in members:
            fresh = zipfile.ZipInfo(info.filename, info.date_time)  # sizes, CRC and flags of the new bytes
            fresh.compress_type, fresh.external_attr = info.compress_type, info.external_attr
            fresh.create_system, fresh.comment = info.create_system, info.comment
            out.writestr(fresh, data)
    _replace(path, buf.getvalue())
    return True


def _grep(path: Path, needles: list[bytes], chunk: int = 1 << 20) -> bool:
    """Any needle in the file's bytes, read in chunks (weights can be large)."""
    longest = max(map(len, needles))
    tail = b""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            window = tail + block
            if any(n in window for n in needles):
                return True
            tail = window[-longest:]
    return False


def _replace(path: Path, data: bytes) -> None:
    """Atomically: a temporary file in the same folder, fsync'ed, with the original's mode, then os.replace."""
    mode = stat.S_IMODE(path.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # the rename itself survives a crash once the folder is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
