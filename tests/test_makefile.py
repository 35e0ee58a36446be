"""`make setup` on a newcomer's machine, with stand-ins for python3 and pip on PATH (no network, nothing installed):

- another Python than the locks' 3.11 stops make at once with one line naming what to install;
- torch's CPU build comes from a wheel pip has at hand when there is one (as on this machine), else from
  PyTorch's CPU index, and only torch asks that index; the lock installs after it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/bin/sh
# A stand-in interpreter: reports version VERSION; `-m venv DIR` makes DIR/bin/pip, which logs its arguments.
if [ "$1" = "-c" ]; then echo VERSION; exit 0; fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cat > "$3/bin/pip" <<'EOF'
#!/bin/sh
echo "$*" >> "$PIP_LOG"
case "$*" in *--no-index*) [ "$TORCH_AT_HAND" = 1 ] || { echo "ERROR: No matching distribution" >&2; exit 1; };; esac
exit 0
EOF
  chmod +x "$3/bin/pip"
  exit 0
fi
exit 1
"""


def _checkout(tmp_path: Path) -> Path:
    """What `make setup` reads, copied: the Makefile, pyproject.toml and the locks."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "Makefile", repo)
    shutil.copy(ROOT / "pyproject.toml", repo)
    shutil.copytree(ROOT / "locks", repo / "locks")
    return repo


def _make(repo: Path, tmp_path: Path, version: str, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python3"
    fake.write_text(FAKE_PYTHON.replace("VERSION", version))
    fake.chmod(0o755)
    # As a person types it: not a sub-make of `make test` (whose MAKELEVEL would turn "make:" into "make[1]:").
    outer = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "setup"], cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**outer, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PIP_LOG": str(tmp_path / "pip.log"),
                               **env})


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_another_python_stops_make_at_once_with_one_line(tmp_path, version):
    repo = _checkout(tmp_path)
    result = _make(repo, tmp_path, version)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("make:")]
    assert lines == [f"ftbot's locks are for Python 3.11, and python3 is {version}: install Python 3.11 (python.org, "
                     "pyenv or uv python install 3.11) and run make PYTHON=python3.11 setup"]
    assert not (repo / ".venv").exists() and not (tmp_path / "pip.log").exists()


@pytest.mark.parametrize("at_hand", [True, False])
def test_torch_cpu_build_comes_from_the_wheel_at_hand_else_from_pytorch_cpu_index(tmp_path, at_hand):
    repo = _checkout(tmp_path)
    result = _make(repo, tmp_path, "3.11", TORCH_AT_HAND="1" if at_hand else "0")
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "pip.log").read_text().splitlines()
    pin = next(line for line in (repo / "locks" / "dev.txt").read_text().splitlines() if line.startswith("torch=="))
    assert pin.endswith("+cpu")
    torch = [f"install --quiet --no-deps --no-index {pin}"]
    if not at_hand:
        torch.append(f"install --quiet --no-deps --index-url https://download.pytorch.org/whl/cpu {pin}")
    assert calls[:len(torch) + 1] == torch + ["install --quiet --no-deps -r locks/dev.txt"]
    assert sum("download.pytorch.org" in call for call in calls) == (0 if at_hand else 1)  # only torch asks it
    assert (repo / ".venv" / ".installed").is_file()
