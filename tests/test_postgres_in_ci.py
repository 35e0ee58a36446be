"""The suite cannot go quiet on PostgreSQL: under CI=true an unreachable server fails the run and says why; on a
laptop without one the PostgreSQL variants skip, with the reason shown."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONE_STORE_TEST = "tests/storage/test_store.py::test_pii_is_redacted_before_it_is_stored"


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_store_test(ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(FT_TEST_POSTGRES_URL=f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test",
               PYTHONPATH=str(ROOT), **({"CI": "true"} if ci else {}))
    return subprocess.run([sys.executable, "-m", "pytest", ONE_STORE_TEST, "-rs", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_under_ci_an_unreachable_postgresql_fails_the_run_and_says_why():
    run = _run_store_test(ci=True)
    assert run.returncode != 0, run.stdout
    assert "1 passed, 1 error" in run.stdout, run.stdout  # the SQLite variant still ran; PostgreSQL's setup failed
    assert "PostgreSQL not reachable at" in run.stdout and "start PostgreSQL or point FT_TEST_POSTGRES_URL" in (
        run.stdout), run.stdout
    assert "Traceback" not in run.stdout


def test_without_ci_the_postgresql_variant_skips_with_the_reason_shown():
    run = _run_store_test(ci=False)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 1 skipped" in run.stdout, run.stdout
    assert "SKIPPED" in run.stdout and "PostgreSQL not reachable at" in run.stdout, run.stdout
