"""Experiment: does a LoRA adapter on SmolLM2-135M-Instruct learn the Quillmate support facts?

Imports the shared Quillmate export into a scratch SQLite store (curators: the team lead and the
head of support), approves every unflagged candidate, snapshots it (15 % validation, by source
key), trains with trainer.train.train_adapter and scores base vs adapter with trainer.evaluate on
the held-out questions: key fact (the reference's numbers/codes/names, core.facts), ROUGE-L F1
and the general-knowledge probe (trainer/probe.jsonl).

Target: key fact >= 0.5 on validation, probe >= 95 % of the base model's.
Run it alone (2 cores: a second torch process makes both crawl). Usage:

    .venv/bin/python bench/train_quality.py [--epochs 3] [--lr 1e-3] [--rank 16] [--no-phrasing] [--tag NAME]

Results go to bench/results/quality/<tag>/ (adapter, loss.png, result.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.slack.importer import import_slack_export
from bot.slack.threads import Rules
from core.states import ExampleStatus
from storage import open_store
from storage.examples import set_status
from storage.models import Example
from storage.snapshots import TRAIN, VALIDATION, create_snapshot, snapshot_rows
from trainer.config import TrainConfig

EXPORT = ROOT.parent / "shared" / "data" / "quillmate-slack-export"
CURATORS = frozenset({"U0AG10XZMXH", "U0AG1DZTDZ2"})
RESULTS = ROOT / "bench" / "results" / "quality"
MODELS = Path.home() / ".cache" / "ftbot-test" / "models"


def quillmate_rows(db_path: Path, val_percent: int = 15, cfg: TrainConfig | None = None
                   ) -> tuple[list[dict], list[dict]] | tuple[list[dict], list[dict], dict, list]:
    """(train, validation) rows of the export, every unflagged candidate approved; with a cfg whose
    retrieval is on, also the retrieved contexts (trainer.context.Contexts, and the validation ones alone), from the
    real index (serving.retrieval) as a job gets them (trainer.job)."""
    from sqlmodel import select

    db_path.unlink(missing_ok=True)
    store = open_store(f"sqlite:///{db_path}")
    import_slack_export(store, EXPORT, label_emoji="white_check_mark", rules=Rules(curators=CURATORS))
    with store.session() as s:
        ids = [e.id for e in s.exec(select(Example).where(Example.status == ExampleStatus.CANDIDATE)) if not e.flags]
        set_status(s, ids, ExampleStatus.APPROVED, "U0AG10XZMXH")
        snap, _ = create_snapshot(s, val_percent)
        snap_id = snap.id
    if cfg is not None and cfg.retrieval:
        from ftbot import wiring

        wiring.sync_index(store)
    with store.session() as s:
        train_snap, val_snap = snapshot_rows(s, snap_id, TRAIN), snapshot_rows(s, snap_id, VALIDATION)
        plain = lambda rows: [{"source_key": r.source_key, "question": r.question, "answer": r.answer} for r in rows]  # noqa: E731  (a one-line helper for the two snapshots)
        train, val = plain(train_snap), plain(val_snap)
        if cfg is not None and cfg.retrieval:
            from trainer.job import retrieved_contexts

            found = retrieved_contexts(s, train_snap, val_snap)
    store.close()
    if cfg is not None and cfg.retrieval:
        return train, val, found, found.validation_hits
    return train, val


def epoch_scores(val: list[dict], cfg: TrainConfig, path: Path, val_ctx: list | None = None):
    """A callback scoring the adapter as it stands after each epoch (key fact, ROUGE-L, probe; and key fact
    with the retrieved pairs in front, when val_ctx is given)."""
    from transformers import TrainerCallback

    from core.prompt import prompt_messages
    from trainer.evaluate import generate, load_probe, score

    probe = load_probe()
    questions = [r["question"] for r in val]
    prompts = [prompt_messages(cfg.system_prompt, q) for q in questions + [p["question"] for p in probe]]
    if val_ctx is not None:
        prompts += [prompt_messages(cfg.system_prompt, q, [(cq, ca) for cq, ca, _ in h])
                    for q, h in zip(questions, val_ctx)]

    class EpochScores(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, processing_class=None, **kw):
            model.eval()
            answers = generate(model, processing_class, prompts, max_new_tokens=cfg.max_new_tokens)
            model.train()
            n, refs = len(val), [r["answer"] for r in val]
            m = score(answers[:n], questions, refs, answers[n:n + len(probe)], probe).to_json()
            if val_ctx is not None:
                m["key_fact_with_retrieval"] = score(answers[n + len(probe):], questions, refs, [], []).key_fact
            row = {"epoch": round(state.epoch, 2), "step": state.global_step, **m}
            print("epoch scores", row, flush=True)
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")

    return EpochScores()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = TrainConfig()
    p.add_argument("--epochs", type=float, default=defaults.epochs)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--rank", type=int, default=defaults.rank)
    p.add_argument("--alpha", type=int, default=None, help="default: 2 x rank")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--patience", type=int, default=defaults.early_stopping_patience)
    p.add_argument("--no-phrasing", action="store_true", help="no every-phrasing augmentation")
    p.add_argument("--no-replay", action="store_true", help="no replay of the base model's general answers")
    p.add_argument("--replay-weight", type=int, default=defaults.replay_weight)
    p.add_argument("--loss-on", default=defaults.loss_on, choices=["answer", "all"])
    p.add_argument("--keep-best", action=argparse.BooleanOptionalAction, default=defaults.keep_best,
                   help="the epoch with the lowest eval loss, not the last")
    p.add_argument("--scheduler", default=defaults.lr_scheduler)
    p.add_argument("--no-retrieval", action="store_true", help="train and evaluate without retrieved context")
    p.add_argument("--eval-epochs", action="store_true",
                   help="also score key fact and probe after every epoch (one run shows the curve)")
    p.add_argument("--no-unknown-context", action="store_true",
                   help="teach \"I don't know\" with an empty context only, not with loosely related pairs")
    p.add_argument("--without-fact", type=float, default=defaults.refuse_without_fact, metavar="SHARE",
                   help="share of support questions also taught with their fact taken out, answered \"I don't know\"")
    p.add_argument("--tag", default="")
    p.add_argument("--fresh", action="store_true", help="train again even if the tag has a finished adapter")
    p.add_argument("--models-dir", type=Path, default=MODELS)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from trainer.base_model import prepare_base_model
    from trainer.evaluate import evaluate
    from trainer.train import train_adapter

    tag = args.tag or (f"r{args.rank}-e{args.epochs:g}-lr{args.lr:g}-b{args.batch_size}"
                       f"{'-plain' if args.no_phrasing else ''}{'-noreplay' if args.no_replay else ''}")
    out = RESULTS / tag
    out.mkdir(parents=True, exist_ok=True)
    base = prepare_base_model(args.models_dir)
    cfg = TrainConfig(base_model=str(base), epochs=args.epochs, lr=args.lr, rank=args.rank,
                      retrieval=not args.no_retrieval,
                      alpha=args.alpha or 2 * args.rank, batch_size=args.batch_size,
                      every_phrasing=not args.no_phrasing, replay=not args.no_replay, keep_best=args.keep_best,
                      replay_weight=args.replay_weight,
                      early_stopping_patience=args.patience, loss_on=args.loss_on,
                      lr_scheduler=args.scheduler, unknown_with_context=not args.no_unknown_context,
                      refuse_without_fact=args.without_fact)
    train_ctx = val_ctx = None
    if cfg.retrieval:
        train, val, train_ctx, val_ctx = quillmate_rows(out / "quillmate.db", cfg=cfg)
        print(f"retrieval: {sum(bool(c) for c in val_ctx)}/{len(val_ctx)} validation questions have context",
              flush=True)
    else:
        train, val = quillmate_rows(out / "quillmate.db")
    print(f"{len(train)} train / {len(val)} validation examples; config: {cfg.to_json()}", flush=True)

    t0 = time.monotonic()
    # A finished adapter under this tag is reused (evaluation only); --fresh trains again.
    callbacks = [epoch_scores(val, cfg, out / "epochs.jsonl", val_ctx)] if args.eval_epochs else []
    result = train_adapter(cfg, train, val, out / "adapter", resume=not args.fresh, callbacks=callbacks,
                           on_progress=lambda p: print("progress", p, flush=True), contexts=train_ctx)
    t_train = time.monotonic() - t0
    base_cache = RESULTS / "base_answers.json"  # greedy: the base model answers the same every run
    cached = json.loads(base_cache.read_text()) if base_cache.is_file() else {}
    key = json.dumps([cfg.system_prompt, cfg.max_new_tokens, [r["question"] for r in val], val_ctx])
    ev = evaluate(str(base), val, out / "adapter", system_prompt=cfg.system_prompt, max_new_tokens=cfg.max_new_tokens,
                  base_answers=cached.get("answers") if cached.get("key") == key else None, val_hits=val_ctx)
    base_cache.write_text(json.dumps({"key": key, "answers": ev.answers["base"]}))
    t_eval = time.monotonic() - t0 - t_train

    b, n = ev.metrics.base, ev.metrics.new
    print(f"\n== {tag}: {result.n_train} train conversations ({result.n_phrasing} every-phrasing, "
          f"{result.n_replay} replay), "
          f"{result.steps} steps, {result.epochs_done} epochs, train {t_train:.0f} s, eval {t_eval:.0f} s, "
          f"{result.tokens_per_s} tokens/s, best eval loss {result.eval_loss}")
    print(f"{'':10}{'key fact':>10}{'ROUGE-L':>10}{'probe':>8}{'key fact + retrieval':>22}")
    for name, m in (("base", b), ("adapter", n)):
        rag = m.with_retrieval
        print(f"{name:10}{m.key_fact:>10.3f}{m.rougeL:>10.3f}{m.probe:>8.3f}"
              f"{rag.key_fact if rag else float('nan'):>22.3f}"
              f"   ({m.key_fact_hits}/{ev.metrics.n_key_fact} key facts alone, "
              f"{rag.key_fact_hits if rag else '–'} with retrieval)")
    keep = (n.probe / b.probe) if b.probe else None
    print(f"probe kept: {keep:.0%}" if keep is not None else "probe kept: n/a")
    for q, ref, a_base, a_new in zip([r["question"] for r in val], [r["answer"] for r in val],
                                     ev.answers["base"], ev.answers["new"]):
        print(f"\nQ: {q[:120]}\n  ref:  {ref[:160]}\n  base: {a_base[:160]}\n  new:  {a_new[:160]}")
    (out / "result.json").write_text(json.dumps({
        "tag": tag, "config": cfg.as_dict(), "train": {k: v for k, v in result.to_json().items() if k != "history"},
        "metrics": ev.metrics.to_json(), "train_s": round(t_train, 1), "eval_s": round(t_eval, 1),
        "answers": ev.answers}, indent=2))


if __name__ == "__main__":
    main()
