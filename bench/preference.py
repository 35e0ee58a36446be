"""Benchmark: does a preference stage trained on the team's edits make the bot right more often, on the Quillmate
export, without making it wrong more often? (issue 26)

    .venv/bin/python bench/preference.py [--phase sft|drafts|stage|report|all] [--retrain] [--redo PHASE]

Each phase keeps its result in ~/.cache/ftbot-bench/preference (--retrain redoes them all, --redo one and those after):
1. sft: the export imported and approved, indexed, one training job with the SFT defaults (bench/trust.py's train()).
2. drafts: the snapshot's validation questions are held out of the index (trust.hold_out_validation) and, with one
   written paraphrase per Quillmate fact (bench/preference_questions.jsonl, "draft"), asked of the SFT version as
   the bot asks a draft channel's question (retrieved pairs in front, grounding check) and stored as Draft rows of
   #support. A strict agent (not a curator) acts on each card as the bot lets one: a right draft is sent as it
   is, a wrong one is edited to the reference (storage.drafts.sent: the edit is a Preference record), a declined
   one is answered with the reference (a pair, no record: the card showed no draft to edit).
3. stage: a snapshot of the store, its preference records, and the stage (trainer.preference.train_preference) on
   top of the SFT adapter. The stage is called on the cached SFT adapter rather than through a second training job,
   which would train SFT again first (twice the time for the same SFT adapter).
4. report: both versions answer the same questions the same way (as the bot asks: retrieved pairs in front,
   grounding check), none of them edited: (a) other paraphrases of the edited facts, (b) facts never edited; the
   edited questions themselves; and the forgetting probe (trainer.evaluate's probe, asked plainly as the gate asks
   it). Right / wrong / "I don't know" per model, and the verdict: the stage is on by default only if it gains right
   answers without adding wrong ones. Figures go to ~/.cache/ftbot-bench/preference-report.json.

Fact identity: a paraphrase's fact is the one it was written for. An export question's fact is the Quillmate fact
(quillmate-facts.md) whose statement is nearest its approved answer (the retrieval embedder's cosine, plus the share
of the answer's key items the statement states: core.facts); the report lists each mapping and its margin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import trust
from bench.train_quality import CURATORS, EXPORT

WORK = Path.home() / ".cache" / "ftbot-bench" / "preference"
PHASES = WORK.parent / "preference-phases.json"  # outside WORK: trust.train() empties WORK
REPORT = WORK.parent / "preference-report.json"
DRAFTS = WORK / "drafts.json"
ANSWERS = WORK / "answers.json"  # each model's replies to the report's questions
QUESTIONS = ROOT / "bench" / "preference_questions.jsonl"
FACTS = EXPORT.parent / "quillmate-facts.md"
AGENT = "U0BENCHAGENT"  # the strict agent: on the team, not a curator (what it sends is a candidate pair)
ASKER = "U0BENCHCUSTOMER"
ORDER = ("sft", "drafts", "stage", "report")


# OpenMP threads that sleep while they wait rather than spin: on this shared 2-core CPU (load 5-9), torch's two
# threads spinning at each barrier ran a 576x576 matmul 23 times a second, sleeping ones 909 (and one thread 322).
# The thread count stays the trainer's default; only how idle threads wait changes.
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}


def bench_env() -> dict:
    # PYTHONPATH: the `ft` processes run this worktree's code, not the one the venv was installed from.
    return {**os.environ, **WAIT_POLICY, "PYTHONPATH": str(ROOT), "FT_DATA_DIR": str(WORK),
            "FT_CURATORS": ",".join(sorted(CURATORS)), "FT_ADMINS": sorted(CURATORS)[0], "FT_AGENTS": AGENT,
            "FT_LOG_LEVEL": "WARNING"}


def peak_rss_mb() -> dict:
    """Peak resident memory (MiB) of this process and of the largest child it waited for (the `ft` processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"self": round(own.ru_maxrss / 1024), "children": round(kids.ru_maxrss / 1024)}


def timed(name: str, fn, *args) -> object:
    """Runs one phase and records its minutes and peak memory in PHASES."""
    t = time.monotonic()
    out = fn(*args)
    record = json.loads(PHASES.read_text()) if PHASES.exists() else {}
    record[name] = {"minutes": round((time.monotonic() - t) / 60, 2), "peak_rss_mb": peak_rss_mb()}
    PHASES.write_text(json.dumps(record, indent=1))
    print(f"phase {name}: {record[name]}", flush=True)
    return out


# --- 1. SFT ----------------------------------------------------------------------------------------------------

def phase_sft(env: dict) -> None:
    trust.train(env, WORK)


# --- questions and their facts -----------------------------------------------------------------------------------

def quillmate_facts() -> dict[str, str]:
    """{fact id: "title. statement"} from quillmate-facts.md."""
    found = (re.match(r"- \*\*(F\d\d) ([^*]+)\*\* — (.*)", line.strip()) for line in FACTS.read_text().splitlines())
    return {m.group(1): f"{m.group(2)}. {m.group(3)}" for m in found if m}


def paraphrases() -> list[dict]:
    """Per fact: the reference answer, the question drafted on, and the evaluation questions (written for this
    bench from quillmate-facts.md, before any model answered them)."""
    return [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]


def facts_of(pairs: list[tuple[str, str]], facts: dict[str, str]) -> list[tuple[str, float]]:
    """(fact id, margin over the runner-up) for each (question, answer): the fact statement nearest the pair by
    embedding cosine plus the share of the answer's key items the statement states."""
    import numpy as np

    from core.embedder import Embedder
    from core.facts import found_items, key_items

    ids = list(facts)
    embedder = Embedder()
    sim = embedder.embed([f"{q} {a}" for q, a in pairs]) @ embedder.embed([facts[f] for f in ids]).T
    out = []
    for row, (q, a) in zip(sim, pairs):
        items = key_items(a, q)
        stated = np.array([len(found_items(facts[f], items)) / len(items) if items else 0.0 for f in ids])
        score = row + 0.2 * stated
        best, second = np.argsort(-score)[:2]
        out.append((ids[best], round(float(score[best] - score[second]), 3)))
    return out


def drafted_questions(session, snapshot_id: int) -> list[dict]:
    """The questions the SFT version drafts answers to: the snapshot's validation questions (held out of the index
    here) and one paraphrase per fact. Each: question, reference, fact, source (and the fact mapping's margin)."""
    val = trust.hold_out_validation(session, snapshot_id)
    mapped = facts_of([(r.question, r.answer) for r in val], quillmate_facts())
    fixes = {p["fact"]: p["reference"] for p in paraphrases()}
    items = [{"question": r.question, "reference": r.answer, "fact": f, "margin": m, "source": "validation",
              "fix": fixes[f]} for r, (f, m) in zip(val, mapped)]
    items += [{"question": p["draft"], "reference": p["reference"], "fact": p["fact"], "source": "paraphrase",
               "fix": p["reference"]} for p in paraphrases()]
    return items


def judged(declined: bool, text: str, item: dict) -> str | None:
    """right / wrong / dont_know of what the bot would send; None when the reference has no key fact to check."""
    from core.facts import carries_key_fact

    fact = carries_key_fact(text, item["reference"], item["question"])
    if fact is None:
        return None
    return "dont_know" if declined else "right" if fact else "wrong"


# --- asking as the bot asks --------------------------------------------------------------------------------------

def bot_deps(env: dict):
    """The bot's parts from the bench's settings (store, model client, retriever synced), as ftbot.wiring builds
    them; a generous answer timeout, as the CPU is shared."""
    from ftbot import wiring
    from ftbot.settings import Settings

    settings = Settings(data_dir=env["FT_DATA_DIR"], model_server_url=env["FT_MODEL_SERVER_URL"],
                        agents={AGENT}, curators=set(CURATORS))
    store = wiring.store(settings)
    retriever = wiring.retrieval_index(store)
    retriever.sync()
    return wiring.deps(settings, store=store, model=wiring.model_client(settings, timeout_s=600),
                       retriever=retriever, answer_timeout_s=600)


async def ask(deps, model: str, question: str, channel: str) -> dict:
    """One question answered as bot.asking.compose answers it (retrieval for the channel, the model, the grounding
    check), with the given served model rather than the deployed one."""
    from bot.asking.compose import retrieve
    from core.prompt import prompt_messages
    from serving.answering import answer

    hits = await retrieve(deps, question, channel=channel)
    context = [(h.question, h.answer) for h in hits] if hits is not None else None
    reply = await answer(deps.model, model, question, hits, system_prompt=deps.system_prompt,
                         max_tokens=deps.answer_max_tokens, timeout_s=deps.answer_timeout_s, grounding=deps.grounding)
    return {"text": reply.text, "model_answer": reply.model_answer, "declined": reply.declined,
            "grounding": reply.grounding.to_json() if reply.grounding else {},
            "context": [h.source_key for h in hits or []],
            "prompt": prompt_messages(deps.system_prompt, question, context)}


async def load(deps, name: str, path: str) -> None:
    from serving.client import AdapterAlreadyLoaded

    try:
        await deps.model.load_adapter(name, path)
    except AdapterAlreadyLoaded:
        pass


def support_channel(session) -> str:
    """The export's #support channel (public): the drafts' channel, so its records may train the shared model."""
    from sqlmodel import select

    from storage.models import SlackChannel

    return session.exec(select(SlackChannel.id).where(SlackChannel.name == "support")).one()


def latest_version(session):
    from sqlmodel import select

    from storage.models import ModelVersion

    return session.exec(select(ModelVersion).order_by(ModelVersion.id.desc())).first()


# --- 2. Drafts and the strict agent's edits -----------------------------------------------------------------------

def phase_drafts(env: dict) -> None:
    from storage import open_store

    store = open_store(f"sqlite:///{WORK / 'ftbot.db'}")
    with store.session() as s:
        forget_drafts(s)
        version = latest_version(s)
        items = drafted_questions(s, version.snapshot_id)
        channel = support_channel(s)
        name, adapter, base = version.name, version.adapter_path, version.base_model
    store.close()
    with trust.served(env, base) as env:
        asyncio.run(draft_all(env, name, adapter, channel, items))
    DRAFTS.write_text(json.dumps({"version": name, "channel": channel, "items": items}, indent=1))
    # The report asks SFT alone these same prompts again (the index is unchanged: the agent's pairs are candidates);
    # greedy decoding answers them the same, so its drafts are its replies there.
    ANSWERS.write_text(json.dumps({name: {i["question"]: i["reply"] for i in items}}, indent=1))
    counts = {a: sum(i["action"] == a for i in items) for a in ("sent", "edited", "answered", "left")}
    print(f"{len(items)} drafts by {name}: {counts} (edited: the preference records)")


async def draft_all(env: dict, name: str, adapter: str, channel: str, items: list[dict]) -> None:
    """Each question drafted by the SFT version as the bot drafts it, stored as a Draft row, acted on by the agent."""
    deps = bot_deps(env)
    try:
        await load(deps, name, adapter)
        for i, item in enumerate(items):
            reply = await ask(deps, name, item["question"], channel)
            item |= {"answer": reply["text"], "model_answer": reply["model_answer"], "declined": reply["declined"],
                     "outcome": judged(reply["declined"], reply["text"], item),
                     "reply": {k: v for k, v in reply.items() if k != "prompt"}}
            item["action"] = await deps.db(lambda s, i=i, item=item, reply=reply: act(s, i, item, reply, name, channel))
    finally:
        await deps.model.close()
        deps.store.close()


def act(session, i: int, item: dict, reply: dict, version: str, channel: str) -> str:
    """The draft card as the bot stores it (storage.drafts, as bot.drafts.flow records one), then the strict agent:
    a right draft sent as it is; a wrong one edited to the right fact (an edit: a Preference record); a declined one
    answered with it (the card showed no draft to edit: a pair, no record); one whose reference states no checkable
    fact left alone. The agent writes the fact as bench/preference_questions.jsonl states it, not a held-out
    thread's answer: that text is the held-out pair itself, and a record whose text is a held-out pair stays on the
    validation side of every snapshot (storage.snapshots.preference_side), so it would never train."""
    from core.states import ChannelMode, DraftStatus
    from storage import drafts

    ts = f"{1_800_000_000 + i}.000100"
    row = drafts.open_draft(session, mode=ChannelMode.DRAFT, channel_id=channel, question_ts=ts, asker=ASKER,
                            question=item["question"])
    drafts.record_answer(session, row.id, status=DraftStatus.PENDING, answer=reply["text"],
                         model_answer=reply["model_answer"], declined=reply["declined"], grounding=reply["grounding"],
                         context=reply["context"], prompt=reply["prompt"], version_name=version, model=version,
                         feedback_id=None)
    action = {"right": "sent", "wrong": "edited", "dont_know": "answered", None: "left"}[item["outcome"]]
    if action != "left":
        drafts.claim(session, row.id, AGENT)
        text = reply["text"] if action == "sent" else item["fix"]
        drafts.sent(session, row.id, text=text, sent_ts=f"{1_800_000_000 + i}.000200", by=AGENT, curator=False)
    item["draft_id"] = row.id
    return action


def forget_drafts(session) -> None:
    """A redone drafts phase starts from no drafts, records or pairs sent from drafts (and the index as SFT left it:
    the agent's pairs are candidates, never indexed)."""
    from sqlmodel import delete

    from storage.models import Draft, Example, Preference

    session.exec(delete(Preference))
    session.exec(delete(Example).where(Example.source_key.like("draft:%")))
    session.exec(delete(Draft))


# --- 3. The preference stage on the SFT adapter ---------------------------------------------------------------------

def phase_stage(env: dict, options: dict | None = None) -> None:
    """trainer.preference.train_preference on the SFT version's adapter, with the snapshot's records (stage_records)
    and the TrainConfig defaults, or `options`: TrainConfig preference_* fields, and declined=1 for the experiment
    that adds the declined drafts (declined_records)."""
    from dataclasses import replace

    from ftbot import wiring
    from ftbot.settings import Settings
    from storage import open_store
    from trainer.preference import train_preference

    options = dict(options or {})
    with_declined = bool(options.pop("declined", 0))
    store = open_store(f"sqlite:///{WORK / 'ftbot.db'}")
    with store.session() as s:
        version = latest_version(s)
        sft, base, name = version.adapter_path, version.base_model, version.name
        records, draft_ids, in_snapshot = stage_records(s)
        if with_declined:
            extra, extra_ids = declined_records(s)
            records, draft_ids = records + extra, draft_ids + extra_ids
    store.close()
    cfg = replace(wiring.train_config(Settings(data_dir=WORK)), base_model=base, **options)
    out = WORK / "stage" / stage_tag({**options, **({"declined": 1} if with_declined else {})})
    shutil.rmtree(out, ignore_errors=True)
    print(f"stage {out.name}: {len(records)} records ({in_snapshot} in the snapshot); {cfg.preference_settings()}")
    result = train_preference(cfg, sft, records, out)
    summary = {"tag": out.name, "adapter": str(out), "sft_adapter": sft, "snapshot_records": in_snapshot,
               "records": len(records), "draft_ids": draft_ids, "settings": cfg.preference_settings(),
               **result.summary()}
    (out / "bench.json").write_text(json.dumps(summary, indent=1))
    if ANSWERS.exists():  # an earlier run of this tag answered with other weights
        kept = json.loads(ANSWERS.read_text())
        kept.pop(f"{name}-pref-{out.name}", None)
        ANSWERS.write_text(json.dumps(kept, indent=1))
    print(f"stage trained: {summary}")


def stage_records(session) -> tuple[list[dict], list[int], int]:
    """(records, their drafts' ids, records in the snapshot): a snapshot of the store as a job takes one, and its
    usable train-side preference records as trainer.job reads them."""
    from ftbot.settings import Settings
    from storage.models import Preference
    from storage.preferences import snapshot_preferences, usable
    from storage.snapshots import TRAIN, create_snapshot

    snap, _ = create_snapshot(session, Settings(data_dir=WORK).val_percent)
    kept = snapshot_preferences(session, snap.id)
    trained = [r for r in kept if r.side == TRAIN and usable(r)]
    records = [{"prompt": list(r.prompt), "question": r.question, "chosen": r.chosen, "rejected": r.rejected}
               for r in trained]
    return records, [session.get(Preference, r.preference_id).draft_id for r in trained], len(kept)


def declined_records(session) -> tuple[list[dict], list[int]]:
    """The experiment, outside the bot's path: each declined draft whose hidden model answer was wrong, as a record
    (its prompt, the agent's answer chosen, the model's answer rejected), train side by its pair's key as an edit's."""
    from ftbot.settings import Settings
    from storage.models import Draft, Example
    from storage.snapshots import TRAIN, side_of

    val_percent = Settings(data_dir=WORK).val_percent
    wrong = {i["draft_id"] for i in json.loads(DRAFTS.read_text())["items"]
             if i["action"] == "answered" and judged(False, i["model_answer"], i) == "wrong"}
    records, ids = [], []
    for draft_id in sorted(wrong):
        row = session.get(Draft, draft_id)
        pair = session.get(Example, row.example_id) if row.example_id else None
        if pair is not None and side_of(pair.source_key, val_percent) == TRAIN:
            records.append({"prompt": list(row.prompt), "question": row.question, "chosen": row.sent_text,
                            "rejected": row.model_answer})
            ids.append(draft_id)
    return records, ids


def stage_tag(options: dict | None) -> str:
    """A stage run's folder: "default", or its options (preference_lr=1e-4 → lr0.0001)."""
    return "-".join(f"{k.removeprefix('preference_')}{v if isinstance(v, str) else f'{v:g}'}"
                    for k, v in sorted((options or {}).items())) or "default"


# --- 4. The report --------------------------------------------------------------------------------------------------

GROUPS = {"a": "(a) other questions of edited facts", "b": "(b) facts never edited",
          "edited": "the edited questions themselves"}


def report_items(drafted: list[dict], trained: set[int]) -> list[dict]:
    """Every question of the report with its group: the edited ones (records the stage trained on); (a) the other
    questions of their facts; (b) questions of facts with no trained edit. The held-out paraphrases were never drafted;
    a drafted question the agent did not edit is asked again."""
    taught = {i["fact"] for i in drafted if i.get("draft_id") in trained}
    items = [{**i, "group": "edited" if i.get("draft_id") in trained else "a" if i["fact"] in taught else "b"}
             for i in drafted]
    items += [{"question": q, "reference": p["reference"], "fact": p["fact"], "source": "held-out paraphrase",
               "group": "a" if p["fact"] in taught else "b"} for p in paraphrases() for q in p["eval"]]
    return items


async def answer_all(env: dict, models: dict[str, str], items: list[dict], channel: str) -> dict:
    """Each model's replies to every question (as the bot asks) and to the probe (plainly, as the gate asks it),
    kept in ANSWERS by model name: a model asked before is asked only what it has not answered."""
    from core.prompt import prompt_messages
    from trainer.evaluate import load_probe

    kept = json.loads(ANSWERS.read_text()) if ANSWERS.exists() else {}
    deps = bot_deps(env)
    try:
        for name, adapter in models.items():
            have = kept.setdefault(name, {})
            todo = [i["question"] for i in items if i["question"] not in have]
            probe = [p["question"] for p in load_probe() if f"probe:{p['question']}" not in have]
            if todo or probe:
                await load(deps, name, adapter)
            for q in todo:
                have[q] = {k: v for k, v in (await ask(deps, name, q, channel)).items() if k != "prompt"}
            for q in probe:
                have[f"probe:{q}"] = {"text": await deps.model.complete(
                    name, prompt_messages(deps.system_prompt, q), max_tokens=96, temperature=0.0)}
            ANSWERS.write_text(json.dumps(kept, indent=1))
    finally:
        await deps.model.close()
        deps.store.close()
    return kept


def tabulate(items: list[dict], replies: dict) -> dict:
    """right / wrong / dont_know / n per group (questions whose reference states a checkable fact), and the probe."""
    from trainer.evaluate import load_probe, probe_hit

    out = {g: {"right": 0, "wrong": 0, "dont_know": 0, "n": 0} for g in GROUPS}
    for item in items:
        reply = replies[item["question"]]
        outcome = judged(reply["declined"], reply["text"], item)
        if outcome is not None:
            out[item["group"]][outcome] += 1
            out[item["group"]]["n"] += 1
    out["not_edited"] = {k: out["a"][k] + out["b"][k] for k in out["a"]}
    probe = load_probe()
    out["probe"] = round(sum(probe_hit(replies[f"probe:{p['question']}"]["text"], p["key"]) for p in probe)
                         / len(probe), 4)
    return out


def verdict(sft: dict, pref: dict) -> tuple[bool, str]:
    """Issue 26: the stage is on by default only if it gains right answers without adding wrong ones (on the
    questions not edited), and the probe does not fall."""
    a, b = sft["not_edited"], pref["not_edited"]
    on = b["right"] > a["right"] and b["wrong"] <= a["wrong"] and pref["probe"] >= sft["probe"]
    why = (f"right {a['right']} → {b['right']}, wrong {a['wrong']} → {b['wrong']}, "
           f"probe {sft['probe']:.0%} → {pref['probe']:.0%} on the {a['n']} questions not edited")
    return on, why


def print_table(tag: str, sft: dict, pref: dict) -> None:
    """SFT alone beside one stage run, grouped by that run's records."""
    print(f"\n{'questions (stage run: ' + tag + ')':44}{'SFT alone':>30}{'SFT + preference':>30}")
    for g, label in [*GROUPS.items(), ("not_edited", "(a) + (b): not edited")]:
        print(f"{label:44}" + "".join(f"{c['right']:>8} ✓ {c['wrong']:>3} ✗ {c['dont_know']:>3} idk /{c['n']:<3}"
                                      for c in (sft[g], pref[g])))
    print(f"{'forgetting probe':44}{sft['probe']:>30.0%}{pref['probe']:>30.0%}")


def phase_report(env: dict) -> None:
    """SFT alone and SFT + preference (each stage run kept in WORK/stage) on the same questions, a table per run, the
    verdict on the default run, and the figures in REPORT."""
    drafted = json.loads(DRAFTS.read_text())
    stages = [json.loads(f.read_text()) for f in sorted((WORK / "stage").glob("*/bench.json"))]
    sft = drafted["version"]
    runs = {st["tag"]: report_items(drafted["items"], set(st["draft_ids"])) for st in stages}
    models = {sft: stages[0]["sft_adapter"]} | {f"{sft}-pref-{st['tag']}": st["adapter"] for st in stages}
    with trust.served(env, base_model()) as env:
        replies = asyncio.run(answer_all(env, models, runs["default"], drafted["channel"]))
    figures = {"phases": json.loads(PHASES.read_text()) if PHASES.exists() else {}, "stages": stages, "runs": {}}
    for st in stages:
        items, pref = runs[st["tag"]], f"{sft}-pref-{st['tag']}"
        run = {"sft": tabulate(items, replies[sft]), "pref": tabulate(items, replies[pref]),
               "facts_edited": sorted({i["fact"] for i in items if i["group"] == "edited"})}
        run["gains"], run["why"] = verdict(run["sft"], run["pref"])
        run["questions"] = [{k: i.get(k) for k in ("question", "fact", "margin", "source", "group", "action")}
                            | {m: judged(replies[m][i["question"]]["declined"], replies[m][i["question"]]["text"], i)
                               for m in (sft, pref)} for i in items]
        figures["runs"][st["tag"]] = run
        print_table(st["tag"], run["sft"], run["pref"])
        print(f"  {st['records']} records, {st['steps']} steps, {st['wall_s']} s; {run['why']}")
    on = figures["runs"]["default"]["gains"]
    figures["verdict"] = {"on_by_default": on, "why": figures["runs"]["default"]["why"]}
    print(f"\nverdict: the preference stage ships {'ON' if on else 'OFF'} by default ({figures['verdict']['why']})")
    REPORT.write_text(json.dumps(figures, indent=1))
    print(f"figures: {REPORT}")


def base_model() -> str:
    from storage import open_store

    store = open_store(f"sqlite:///{WORK / 'ftbot.db'}")
    with store.session() as s:
        base = latest_version(s).base_model
    store.close()
    return base


def done(phase: str, stage: dict | None = None) -> bool:
    """Whether a phase's result is kept (the report is always made again, from the kept replies)."""
    return {"sft": any((WORK / "adapters").glob("*/adapter_config.json")), "drafts": DRAFTS.exists(),
            "stage": (WORK / "stage" / stage_tag(stage) / "bench.json").exists(), "report": False}[phase]


PHASE = {"sft": phase_sft, "drafts": phase_drafts, "stage": phase_stage, "report": phase_report}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--phase", default="all", choices=[*ORDER, "all"])
    p.add_argument("--retrain", action="store_true", help="redo every phase even when its result is kept")
    p.add_argument("--redo", choices=ORDER, help="redo this phase and the ones after it")
    p.add_argument("--stage", action="append", default=[], metavar="FIELD=VALUE",
                   help="a TrainConfig preference setting for another stage run (preference_lr=1e-4); the report "
                        "shows every run kept, the verdict is the defaults'")
    args = p.parse_args()
    os.environ.update(WAIT_POLICY)  # before torch loads: the stage trains in this process
    env = bench_env()
    stage = {k: float(v) if k != "preference_loss" else v for k, v in (a.split("=", 1) for a in args.stage)} or None
    redo = ORDER.index("sft" if args.retrain else args.redo) if (args.retrain or args.redo) else len(ORDER)
    for i, name in enumerate(ORDER):
        if args.phase in (name, "all") and (i >= redo or not done(name, stage)):
            timed(name if name != "stage" else f"stage-{stage_tag(stage)}", PHASE[name], env,
                  *([stage] if name == "stage" else []))


if __name__ == "__main__":
    main()
