"""`/ft` is declared once per subcommand (bot.commands.registry): help, the manifest's hint and dispatch read it."""

from pathlib import Path

import pytest
import yaml

from bot.commands.registry import EVERYONE, UsageError, command, commands, parse, usage_hint

ROOT = Path(__file__).resolve().parents[2]


def test_the_manifests_usage_hint_is_the_registrys():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    [ft] = [c for c in manifest["features"]["slash_commands"] if c["command"] == "/ft"]
    assert ft["usage_hint"] == usage_hint()


def test_every_subcommand_parses_and_runs_from_its_one_declaration():
    for name, spec in commands().items():
        assert spec.name == name and spec.summary and spec.syntax.startswith(name) and callable(spec.run)
    assert parse("").name == "help"
    assert parse("cancel 12").args == 12
    with pytest.raises(UsageError, match="takes no arguments"):
        parse("jobs now")


def test_a_subcommand_declared_twice_fails_at_import():
    with pytest.raises(ValueError, match="declared twice"):
        command("train", syntax="train", role=EVERYONE, summary="again")(lambda call: None)
