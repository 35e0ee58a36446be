"""The bot image, built from the Dockerfile with buildah (no Docker engine) and run as a person checks it: `ft --help`,
`ft init` making the store, and `ft bot` answering GET /healthz. `make image` runs these (FT_TEST_IMAGE=1): a cold
build takes minutes, so `make test` skips them and says so. Where python:3.11-slim cannot be pulled,
images/python-standin.sh makes its stand-in first. Without buildah (or, for the stand-in, mmdebstrap) they skip with
the reason, except under CI=true, where they fail: CI must not lose the image and stay green."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "localhost/ftbot-bot:latest"
# The host's CA bundle, seen by the build's RUN steps only (the image is unchanged): pip behind a proxy that
# re-signs TLS then trusts what the host trusts. The stand-in's pip (Debian's) reads this bundle.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = "apt-get install buildah mmdebstrap (Debian/Ubuntu, as root), then make image"

pytestmark = pytest.mark.image
if os.environ.get("FT_TEST_IMAGE") != "1":
    pytest.skip("builds the bot image with buildah (minutes): run by `make image`", allow_module_level=True)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def _cannot_build(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: the bot image must be built; {TOOLS})", pytrace=False)
    pytest.skip(f"{reason}: {TOOLS}")


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def container():
    """A working container of the freshly built image (the Dockerfile's `bot` target, as `make image` builds it)."""
    if not shutil.which("buildah"):
        _cannot_build("buildah not found")
    base = subprocess.run([str(ROOT / "images" / "python-standin.sh")], capture_output=True, text=True, timeout=900)
    if base.returncode == 2:  # a tool is missing; the line says which
        _cannot_build(base.stderr.strip())
    assert base.returncode == 0, base.stdout + base.stderr
    mount = ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.is_file() else []
    # --layers: a second build reuses the base's and the locks' layers, and installs only our code again.
    # --force-rm: a failed build leaves no working container behind.
    build = subprocess.run(["buildah", "bud", "--isolation", "chroot", "--layers", "--force-rm", "--target", "bot",
                            *mount, "--tag", IMAGE, "."], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=1800)
    assert build.returncode == 0, _tail(build.stdout)
    name = f"ftbot-image-test-{os.getpid()}"
    subprocess.run(["buildah", "from", "--name", name, IMAGE], check=True, capture_output=True, timeout=120)
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True, timeout=120)


def _run(container: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", "run", "--isolation", "chroot", container, "--", *command],
                          capture_output=True, text=True, timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_ft_help_lists_the_commands(container):
    result = _run(container, "ft", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: ft" in result.stdout
    for command in ("init", "bot", "status", "import-slack", "deploy", "doctor"):
        assert f"│ {command} " in result.stdout, f"`ft --help` in the image lacks {command}"


def test_the_image_runs_python_311_from_usr_local_and_holds_no_torch(container):
    result = _run(container, "python", "-c", "import importlib.util as u, sys; "
                  "print(sys.executable, '%d.%d' % sys.version_info[:2], u.find_spec('torch') is None)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/usr/local/bin/python", "3.11", "True"]


def test_ft_init_creates_the_store_in_the_volume(container):
    result = _run(container, "ft", "init")
    assert result.returncode == 0, result.stderr
    assert "data dir: /data" in result.stdout
    assert "database: sqlite:////data/ftbot.db (schema up to date)" in " ".join(result.stdout.split())
    status = _run(container, "ft", "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["snapshots"] == 0 and data["deployed"] is None and set(data["examples"].values()) == {0}


def test_ft_bot_answers_healthz_and_refuses_unsigned_events(container, tmp_path):
    port = _free_port()
    # HTTP mode, as on Fly.io; Slack's Web API pointed at a closed port, so nothing leaves this machine.
    env = {"PORT": str(port), "SLACK_BOT_TOKEN": "xoxb-image-test", "SLACK_SIGNING_SECRET": "image-test-secret",
           "FT_SLACK_API_URL": f"http://127.0.0.1:{_free_port()}/"}
    flags = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    log = tmp_path / "bot.log"
    with open(log, "w") as out:
        # The host's network, so this test reaches the port (chroot isolation makes no network namespace anyway).
        bot = subprocess.Popen(["buildah", "run", "--isolation", "chroot", "--network", "host", *flags, container,
                                "--", "ft", "bot"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert bot.poll() is None, f"ft bot exited in the image:\n{_tail(log.read_text())}"
            try:
                health = _get(url + "/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, f"ft bot did not answer within 90 s:\n{_tail(log.read_text())}"
                time.sleep(0.2)
        assert health == (200, '{"ok": true}')
        request = urllib.request.Request(url + "/slack/events", data=b'{"type": "url_verification"}', method="POST")
        try:
            urllib.request.urlopen(request, timeout=5)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 401  # the signing secret is checked: no signature, no entry
        assert "ftbot listening on :%d" % port in log.read_text()
    finally:
        os.killpg(bot.pid, signal.SIGTERM)
        try:
            bot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(bot.pid, signal.SIGKILL)
            bot.wait()
    assert "Traceback" not in log.read_text(), _tail(log.read_text())
