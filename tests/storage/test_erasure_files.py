"""Erasure in the data folder's files (storage.erasure_files): a Slack export kept there, loose and zipped, a JSONL
log and its gzipped copy lose every trace of the person (messages, id, names from users.json and user_profile),
keep everyone else's, and keep their modes; a file that holds them but cannot be rewritten is named, untouched."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

from fakes.slack_export import ExportBuilder
from storage.erasure_files import files_mention, scrub_files

ZED = "UZED4242"
ZED_NAMES = ("Zedediah Quillfeather", "zedediah quillfeather", "zed.quill@example.com", "Zeddy")
# What Zed wrote in Slack: each text appears nowhere else, so any trace of it afterwards is a leak.
ZED_TEXTS = ("My platypus invoice shows the wrong VAT number", "the capybara export fails at midnight",
             "thanks, the axolotl report works now")
OTHERS = ("The trial lasts 21 days", "Solo is 9 a month", "Mia")


def export() -> ExportBuilder:
    """#support with Zed asking, replying, reacting and being mentioned, beside Mia and an agent."""
    b = (ExportBuilder().channel("support", "CSUP").user("UAGENT", "Aaron").user("UMIA", "Mia")
         .user(ZED, "Zedediah Quillfeather"))
    b.users[ZED]["profile"].update(email="zed.quill@example.com", display_name="Zeddy", title="Chief of Things")
    b.thread("support", ZED, ZED_TEXTS[0], [("UAGENT", f"<@{ZED}> fixed, please check", [ZED]),
                                            (ZED, ZED_TEXTS[2])])
    b.thread("support", "UMIA", "How long is the trial?", [("UAGENT", OTHERS[0], [ZED, "UMIA"])])
    b.thread("support", "UMIA", "what does Solo cost", [("UAGENT", OTHERS[1]), (ZED, ZED_TEXTS[1])])
    for channel in b.messages.values():  # Slack puts the author's profile in each message
        for m in channel:
            user = b.users[m["user"]]
            m["user_profile"] = {"name": user["name"], "real_name": user["real_name"],
                                 "display_name": user["profile"]["display_name"]}
    return b


def build_folder(root: Path) -> Path:
    """A data folder: the export loose and zipped, and a JSONL log of messages with its gzipped copy."""
    b = export()
    b.write_dir(root / "exports" / "acme")
    b.write_zip(root / "exports" / "acme.zip", top="acme/")
    (root / "exports" / "acme" / "users.json").chmod(0o640)
    lines = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in b.messages["support"])
    (root / "logs").mkdir()
    (root / "logs" / "messages.jsonl").write_text(lines)
    (root / "logs" / "messages.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    (root / "adapters" / "ft-1-v1").mkdir(parents=True)
    (root / "adapters" / "ft-1-v1" / "adapter_model.safetensors").write_bytes(b"\x00weights, nobody's text")
    return root


def contents(root: Path) -> dict[str, str]:
    """Every file's text, gzip decompressed and each zip member on its own, as a grep would see them."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                out |= {f"{rel}:{i.filename}": zf.read(i).decode("utf-8", "replace") for i in zf.infolist()}
        elif path.suffix == ".gz":
            out[rel] = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        else:
            out[rel] = path.read_bytes().decode("utf-8", "replace")
    return out


def traces(root: Path) -> list[tuple[str, str]]:
    return [(name, t) for name, text in contents(root).items() for t in (ZED, *ZED_NAMES, *ZED_TEXTS) if t in text]


def test_the_person_leaves_every_file_and_everyone_else_stays(tmp_path):
    root = build_folder(tmp_path / "data")
    assert {t for _, t in traces(root)} == {ZED, *ZED_NAMES, *ZED_TEXTS}  # the folder held all of it
    before = contents(root)

    result = scrub_files(root, set(), ZED)

    assert traces(root) == []
    assert result.left == []
    assert sorted(result.changed) == sorted(
        ["exports/acme.zip", "logs/messages.jsonl", "logs/messages.jsonl.gz"]
        + [str(p.relative_to(root)) for p in (root / "exports" / "acme").rglob("*.json")])
    after = contents(root)
    for name in ("exports/acme/support", "exports/acme.zip:acme/support", "logs/messages.jsonl"):
        day = next(text for n, text in after.items() if n.startswith(name))
        assert OTHERS[0] in day and OTHERS[1] in day and "How long is the trial?" in day
    users = json.loads(after["exports/acme/users.json"])
    assert [u["id"] for u in users] == ["UAGENT", "UMIA"] and users[1]["real_name"] == "Mia"
    assert json.loads(after["exports/acme.zip:acme/users.json"]) == users
    assert json.loads(after["exports/acme/channels.json"])[0]["members"] == ["UAGENT", "UMIA"]
    # A reaction Zed shared with Mia keeps Mia, counted again.
    reacted = [json.loads(line) for line in after["logs/messages.jsonl"].splitlines() if OTHERS[0] in line][0]
    assert reacted["reactions"][0]["users"] == ["UMIA"] and reacted["reactions"][0]["count"] == 1
    assert after["adapters/ft-1-v1/adapter_model.safetensors"] == before["adapters/ft-1-v1/adapter_model.safetensors"]
    assert (root / "exports" / "acme" / "users.json").stat().st_mode & 0o777 == 0o640  # the mode kept
    assert not [p for p in root.rglob("*.tmp")]  # no temporary file left behind
    assert scrub_files(root, set(), ZED).changed == []  # a second run finds nothing more


def test_texts_from_the_database_go_from_any_json_or_text_file(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "train.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": ZED_TEXTS[0]}]}) + "\n"
                                      + json.dumps({"messages": [{"role": "user", "content": OTHERS[0]}]}) + "\n")
    (root / "notes.txt").write_text(f"asked: {ZED_TEXTS[1]}\n{OTHERS[1]}\n")
    result = scrub_files(root, {ZED_TEXTS[0], ZED_TEXTS[1]}, ZED)
    assert sorted(result.changed) == ["notes.txt", "train.jsonl"] and traces(root) == []
    assert OTHERS[0] in (root / "train.jsonl").read_text() and OTHERS[1] in (root / "notes.txt").read_text()


def test_a_file_that_cannot_be_rewritten_is_named_and_left_as_it_is(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "dump.bin").write_bytes(b"\x00\x01" + ZED.encode() + b"\x00")
    (root / "broken.json").write_text('{"user": "%s", "text": ' % ZED)
    with zipfile.ZipFile(root / "photos.zip", "w") as zf:
        zf.writestr("users.json", json.dumps([{"id": ZED, "name": "zed"}]))
        zf.writestr("avatar.png", b"\x89PNG\x00" + ZED.encode())
    (root / "unrelated.bin").write_bytes(b"\x00\x01nobody\x00")
    (root / "unrelated.json").write_text("{not json, and nothing of theirs")
    before = {p.name: p.read_bytes() for p in root.iterdir()}

    result = scrub_files(root, set(), ZED)

    assert result.changed == []
    assert [left.split(":", 1)[0] for left in result.left] == ["broken.json", "dump.bin", "photos.zip"]
    assert "not valid JSON" in result.left[0] and "member avatar.png" in result.left[2]
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before  # nothing half-done


def test_files_mention_looks_inside_zips_and_gzip(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    assert not files_mention(root, ZED)
    with zipfile.ZipFile(root / "x.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("users.json", json.dumps([{"id": ZED}]))
    assert files_mention(root, ZED) and not files_mention(root, "UNOSUCHUSER1")
    (root / "x.zip").unlink()
    (root / "log.jsonl.gz").write_bytes(gzip.compress(json.dumps({"user": ZED}).encode()))
    assert files_mention(root, ZED)
