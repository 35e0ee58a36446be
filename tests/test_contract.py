"""The facts trainer, serving and bot share are written once (core/contract.py), and every user takes
them from there; the packages import only what DESIGN.md allows."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import contract
from core.contract import DEFAULT_SYSTEM_PROMPT, LORA_RANKS, RETRIEVAL, JobProgress, VersionMetrics

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "storage", "trainer", "serving", "bot", "ftbot", "demo", "bench", "fakes")
# Which of our packages each may import (DESIGN.md); ftbot, demo and bench wire everything together; fakes stand
# for Slack and a model in tests, demo and benches, and import nothing of ours (and the product never imports them).
ALLOWED = {"core": set(), "storage": {"core"}, "trainer": {"core", "storage"}, "serving": {"core", "storage"},
           "bot": {"core", "storage", "serving"}, "ftbot": {"core", "storage", "trainer", "serving", "bot"},
           "fakes": set()}


def _sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for pkg in PACKAGES
            for path in sorted((ROOT / pkg).rglob("*.py")) if "migrations" not in path.parts}


def _imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


# Three rank values in a row, as prose lists them ("8, 16, 32", "256 or 320", "16|32|64").
_RANK = "(?:" + "|".join(map(str, sorted(LORA_RANKS, reverse=True))) + ")"
_RANKS_IN_TEXT = re.compile(rf"(?<![\d.]){_RANK}(?:(?:\s*[,|/]\s*|\s+or\s+|\s+and\s+){_RANK}){{2}}(?![\d.])")


def _copies_the_ranks(node: ast.AST) -> bool:
    """A copy of the rank list: a literal holding 3+ of its values, prose listing 3 in a row, or a join of
    LORA_RANKS made outside core/contract.py (which offers RANKS_LISTED and RANK_CHOICES)."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        ints = {e.value for e in node.elts if isinstance(e, ast.Constant) and type(e.value) is int}
        return len(ints & set(LORA_RANKS)) >= 3
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(_RANKS_IN_TEXT.search(node.value))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join":
        return any(isinstance(n, ast.Name) and n.id == "LORA_RANKS" for a in node.args for n in ast.walk(a))
    return False


def test_the_rank_check_sees_every_kind_of_copy():
    copies = ["(8, 16, 32)", "[64, 128, 256, 512]", "'rank=one of 1, 8, 16'", "'256 or 320 or 512'",
              "', '.join(map(str, LORA_RANKS))", "f\"one of {'/'.join(str(r) for r in LORA_RANKS)}\""]
    fine = ["(1, 5, 15, 30, 60)", "'epochs=1..50, lr=a number in (0, 1]'", "LORA_RANKS[-1]", "', '.join(names)",
            "'v1.8.16'"]
    found = lambda src: any(_copies_the_ranks(n) for n in ast.walk(ast.parse(src)))  # noqa: E731
    assert [c for c in copies if not found(c)] == []
    assert [f for f in fine if found(f)] == []


def test_each_shared_fact_is_written_once():
    owner = ROOT / "core" / "contract.py"
    prompt_start = DEFAULT_SYSTEM_PROMPT[:40]
    for path, tree in _sources().items():
        if path == owner or path.relative_to(ROOT).parts[0] == "fakes":  # the fakes' test data (a tokenizer corpus)
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert prompt_start not in node.value, f"{path}: a copy of the default system prompt"
            assert not _copies_the_ranks(node), f"{path}:{node.lineno}: a copy of the LoRA ranks (use core.contract)"
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {t.id for t in targets if isinstance(t, ast.Name)} | {
                    t.attr for t in targets if isinstance(t, ast.Attribute)}
                assert not names & {"LORA_RANKS", "RANKS", "THRESHOLD", "DEFAULT_SYSTEM_PROMPT", "retrieval_k",
                                    "retrieval_min_score", "retrieval_model"}, f"{path}:{node.lineno}: {names}"


def test_every_user_takes_the_facts_from_the_contract():
    from bot.deps import Deps
    from ftbot.settings import Settings
    from serving.retrieval import Retriever
    from trainer import config, data

    assert Settings().system_prompt == DEFAULT_SYSTEM_PROMPT == config.TrainConfig().system_prompt
    assert config.LORA_RANKS is LORA_RANKS
    assert inspect.signature(data.build_data).parameters["context_k"].default == RETRIEVAL.k
    assert inspect.signature(Retriever).parameters["spec"].default is RETRIEVAL
    # The bot's values come from Settings through ftbot.wiring: Deps has no defaults of its own for them.
    no_default = {f.name for f in dataclasses.fields(Deps) if f.default is dataclasses.MISSING
                  and f.default_factory is dataclasses.MISSING}
    assert {"system_prompt", "label_emoji", "max_answer_chars", "answer_max_tokens"} <= no_default


def test_packages_import_only_what_the_design_allows():
    for path, tree in _sources().items():
        pkg = path.relative_to(ROOT).parts[0]
        if pkg not in ALLOWED:
            continue
        ours = {name.split(".")[0] for name in _imports(tree)} & set(PACKAGES)
        assert ours - {pkg} <= ALLOWED[pkg], f"{path.relative_to(ROOT)} imports {sorted(ours - {pkg})}"


def test_the_contract_imports_nothing_heavy():
    code = ("import sys, core.contract; heavy = {'torch', 'numpy', 'transformers', 'peft', 'slack_bolt'} "
            "& set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_records_read_rows_written_before_them_and_round_trip():
    # A version stored by an older trainer: missing fields read as defaults, unknown keys are ignored.
    old = {"key_fact": 0.5, "eval": {"new": {"key_fact": 0.5, "rougeL": 0.4}, "base": None}, "retired_key": 1,
           "samples": [{"question": "Q?", "new": "A.", "context": [["q", "a"]]}], "train": {"steps": 7}}
    m = VersionMetrics.from_json(old)
    assert m.eval.new.rougeL == 0.4 and m.eval.base is None and m.train.steps == 7
    assert m.samples[0].context == [("q", "a")] and m.max_new_tokens == 96
    assert VersionMetrics.from_json(m.to_json()) == m
    assert JobProgress.from_json(None) == JobProgress() and JobProgress.from_json({"step": 3}).step == 3


@pytest.mark.parametrize("raw, problem", [
    ({"r": 16, "bias": "none"}, None),
    ({"r": 12}, "is not one vLLM serves"),
    ({"r": 64}, "greater than max_lora_rank 32"),
    ({"r": 8, "modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"r": 8, "bias": "all"}, "bias"),
    ({"r": 8, "use_dora": True}, "DoRA"),
])
def test_the_adapter_rules_refuse_what_vllm_refuses(raw, problem):
    problems = contract.adapter_problems(raw, max_lora_rank=32)
    assert (problems == []) if problem is None else any(problem in p for p in problems)
