"""tests/test_image.py cannot go quiet: without buildah, `make image` skips with what to install, and under CI=true
it fails and says why (CI must not lose the image and stay green). No build here: these run in `make test`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gate(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(FT_TEST_IMAGE="1", PATH=str(empty), PYTHONPATH=str(ROOT), **({"CI": "true"} if ci else {}))
    # As `make image` runs it, on a machine without buildah.
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "image", "tests/test_image.py", "-rs", "-q",
                           "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_without_buildah_make_image_skips_and_says_what_to_install(tmp_path):
    run = _gate(tmp_path, ci=False)
    assert run.returncode == 0 and "4 skipped" in run.stdout and "passed" not in run.stdout, run.stdout
    assert "buildah not found: apt-get install buildah mmdebstrap" in run.stdout, run.stdout


def test_under_ci_without_buildah_make_image_fails_and_says_why(tmp_path):
    run = _gate(tmp_path, ci=True)
    assert run.returncode != 0 and "4 errors" in run.stdout and "skipped" not in run.stdout, run.stdout
    assert "buildah not found (CI=true: the bot image must be built" in run.stdout, run.stdout
    assert "Traceback" not in run.stdout
