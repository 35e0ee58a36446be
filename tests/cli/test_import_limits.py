"""Bounded imports and an explicit database folder, as a user meets them at `ft` (issue 27)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fakes.slack_export import support_workspace

FT = shutil.which("ft", path=str(Path(sys.executable).parent))
# Runs `ft …` as its only child and prints the child's peak RSS in kB (Linux ru_maxrss), so no earlier child of
# the test process counts.
PEAK_RSS = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def _run(*args, **env):
    return subprocess.run([FT, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def _one_line_error(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def _nothing_stored():
    status = json.loads(_run("status", "--json").stdout)
    assert status["examples"] == {"candidate": 0, "approved": 0, "rejected": 0}


def test_a_zip_bomb_is_refused_early_in_one_line(tmp_path, monkeypatch):
    """A ~1 MB zip whose day file decompresses to 1 GiB: refused at the default per-file limit, with a peak RSS
    under 300 MB, and nothing stored. (On SQLite only: the database plays no part, and the zip takes seconds.)"""
    monkeypatch.setenv("FT_DATABASE_URL", f"sqlite:///{tmp_path / 'ftbot.db'}")
    bomb = support_workspace().write_zip(tmp_path / "bomb.zip")
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("support/2099-01-01.json", "w") as member:
        zeros = bytes(1 << 20)
        for _ in range(1024):
            member.write(zeros)
    assert bomb.stat().st_size < 2 * 2**20
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, FT, "import-slack", str(bomb)], capture_output=True,
                          text=True, env=os.environ, timeout=120)
    *lines, peak_kb = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (f"{bomb}:support/2099-01-01.json: over the 64 MB limit for one file (FT_IMPORT_MAX_FILE_MB)"
            in " ".join(lines[0].split()))
    assert int(peak_kb) < 300 * 1024, f"peak RSS {int(peak_kb) // 1024} MB"
    _nothing_stored()


def test_the_limits_are_settings(ft_env, tmp_path):
    path = support_workspace().write_dir(tmp_path / "export")
    err = _one_line_error(_run("import-slack", str(path), FT_IMPORT_MAX_TOTAL_MB="0.001"))
    assert "the export is over the 0.001 MB limit for all its files (FT_IMPORT_MAX_TOTAL_MB)" in err
    err = _one_line_error(_run("import-slack", str(path), FT_IMPORT_MAX_FILE_MB="0.0001"))
    assert "over the 0.0001 MB limit for one file (FT_IMPORT_MAX_FILE_MB)" in err
    _nothing_stored()
    err = _one_line_error(_run("status", FT_IMPORT_MAX_FILE_MB="-1"))
    assert "FT_IMPORT_MAX_FILE_MB" in err


def test_a_symlinked_day_file_is_refused_in_one_line(ft_env, tmp_path):
    path = support_workspace().write_dir(tmp_path / "export")
    day = sorted((path / "support").iterdir())[0]
    day.unlink()
    day.symlink_to("/etc/passwd")
    err = _one_line_error(_run("import-slack", str(path)))
    assert f"{day.name} is a symbolic link, which is not followed" in err
    _nothing_stored()


def test_a_jsonl_file_over_the_limit_is_refused_and_nothing_stored(ft_env, tmp_path):
    path = tmp_path / "pairs.jsonl"
    line = json.dumps({"prompt": "Q?", "completion": "A."}) + "\n"
    path.write_text(line + json.dumps({"prompt": "Q2?", "completion": "x" * 4000}))  # one long last line
    err = _one_line_error(_run("examples", "import", str(path), FT_IMPORT_MAX_FILE_MB="0.001"))
    assert f"{path}: over the 0.001 MB limit for one file (FT_IMPORT_MAX_FILE_MB)" in err
    _nothing_stored()
    assert _run("examples", "import", str(path)).returncode == 0  # under the default limit


@pytest.mark.parametrize("command", [["status"], ["init"]])
def test_a_missing_database_folder_is_one_line_and_not_created(tmp_path, command):
    missing = tmp_path / "nonexistent" / "dir"
    err = _one_line_error(_run(*command, FT_DATABASE_URL=f"sqlite:///{missing}/x.db", FT_DATA_DIR=str(tmp_path / "d")))
    assert (f"error: FT_DATABASE_URL: the folder {missing} does not exist; create it or point FT_DATABASE_URL "
            "elsewhere") in " ".join(err.split())
    assert not (tmp_path / "nonexistent").exists()


def test_the_data_folder_is_still_created_for_the_default_database(tmp_path):
    data = tmp_path / "a" / "b"
    proc = _run("status", "--json", FT_DATABASE_URL="", FT_DATA_DIR=str(data))
    assert proc.returncode == 0, proc.stderr
    assert (data / "ftbot.db").is_file()
