"""Which checkpoint a training keeps, judged by what reaches a customer (TrainConfig.checkpoint_by = "answers").

At each evaluation during training (after each epoch, or every save_every_steps), once the validation loss is in:

- every validation question whose reference states a key fact, and every off-store question (trainer/offstore.jsonl,
  never taught), is asked as the bot asks it: the pairs retrieval found for it on the training side in front (the
  job's trainer.context.Contexts), one greedy answer of at most checkpoint_max_new_tokens from the model as it stands.
  Where the bot would give an approved answer as it is (core.reuse), that answer counts and nothing is generated;
- the held-out evaluation's judge counts what would be sent (trainer.evaluate.outcomes: the grounding check, then
  the reference's key fact): right, wrong, declined, and off-store questions answered;
- core.contract's rule (CHECKPOINT_RULES["answers"]) turns the counts into the one number Trainer keeps the best
  checkpoint by (load_best_model_at_end, metric_for_best_model) and EarlyStoppingCallback stops on.

Each evaluation's counts and cost go into the Trainer's log (a resumed job keeps them) and the training's result.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple, Sequence

from core.contract import CheckpointScore, checkpoint_metric
from core.facts import carries_key_fact
from core.prompt import ANSWER_STOPS, prompt_messages, without_echo
from core.reuse import reused_answer
from trainer.config import TrainConfig
from trainer.context import Contexts, Scored
from trainer.data import field_of

log = logging.getLogger("ftbot.trainer")

METRIC = "answers"  # metric_for_best_model; Trainer reads it from the evaluation's metrics as "eval_answers"
LOGGED = "checkpoint_score"  # the key of each evaluation's scores in Trainer's log history


class Hit(NamedTuple):
    """A retrieved pair as core.reuse reads one (serving.retrieval.Hit's fields)."""

    question: str
    answer: str
    score: float


class Asked(NamedTuple):
    """What one evaluation asks: the scored validation questions, then the off-store ones."""

    questions: list[str]
    references: list[str]
    hits: list[Scored]
    offstore: list[str]
    offstore_hits: list[Scored]


def asked(val_rows: Sequence[Any], contexts: Contexts) -> Asked:
    """The validation questions whose reference states a key fact (the others count for nothing: outcomes() skips
    them), with their retrieved pairs; and the off-store questions with theirs."""
    keep = [(str(field_of(r, "question")), str(field_of(r, "answer")), list(h))
            for r, h in zip(val_rows, contexts.validation_hits)
            if carries_key_fact("", str(field_of(r, "answer")), str(field_of(r, "question"))) is not None]
    return Asked([q for q, _, _ in keep], [a for _, a, _ in keep], [h for _, _, h in keep],
                 list(contexts.offstore_hits), [list(h) for h in contexts.offstore_hits.values()])


def score_answers(cfg: TrainConfig, questions: Asked, answer: Any) -> CheckpointScore:
    """Counts of what the bot would send. answer(prompts) → the model's answers (greedy); asked only for the
    questions the bot would not answer with an approved answer as it is."""
    from trainer.evaluate import outcomes

    started, cpu = time.monotonic(), time.process_time()
    every = questions.questions + questions.offstore
    hits = questions.hits + questions.offstore_hits
    reused = [reused_answer(q, [Hit(*h) for h in hs], min_score=cfg.reuse.min_score, grounding=cfg.grounding)
              for q, hs in zip(every, hits)]
    todo = [n for n, r in enumerate(reused) if r is None]
    said = answer([prompt_messages(cfg.system_prompt, every[n], [(q, a) for q, a, _ in hits[n]]) for n in todo])
    answers = [r[0].text if r is not None else "" for r in reused]
    for n, text in zip(todo, said):
        answers[n] = without_echo(text)
    log.debug("answers scored: %s", answers)
    n = len(questions.questions)
    o = outcomes(questions.questions, questions.references, answers[:n], questions.hits, questions.offstore,
                 answers[n:], questions.offstore_hits, cfg.grounding)
    return CheckpointScore(n=o.n, right=o.right, wrong=o.wrong, declined=o.dont_know, n_offstore=o.n_offstore,
                           offstore_sent=o.n_offstore - o.offstore_refused, reused=len(every) - len(todo),
                           seconds=round(time.monotonic() - started, 2), cpu_s=round(time.process_time() - cpu, 2))


def answers_callback(cfg: TrainConfig, val_rows: Sequence[Any], contexts: Contexts):
    """A TrainerCallback that scores each evaluation's model by its answers (see the module docstring). It must run
    before EarlyStoppingCallback, which reads the number it adds."""
    from transformers import TrainerCallback

    from trainer.evaluate import generate

    questions = asked(val_rows, contexts)

    class _Answers(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, model=None, processing_class=None, **kw):
            if metrics is None or "eval_loss" not in metrics:
                return
            training = model.training
            model.eval()
            try:
                score = score_answers(cfg, questions, lambda prompts: generate(
                    model, processing_class, prompts, max_new_tokens=cfg.checkpoint_max_new_tokens,
                    stop=ANSWER_STOPS))  # as the bot stops its answers (trainer.evaluate.answer_as_bot)
            finally:
                model.train(training)
            score = score.model_copy(update={"step": state.global_step, "epoch": round(state.epoch or 0.0, 3),
                                             "eval_loss": float(metrics["eval_loss"])})
            metrics[f"eval_{METRIC}"] = checkpoint_metric(score)
            state.log_history.append({LOGGED: score.to_json(), "step": state.global_step})
            if state.is_world_process_zero:
                log.info("step %d answers: right %d, wrong %d, declined %d of %d; off-store answered %d of %d; "
                         "%d reused; eval loss %.4f; scored in %.1f s (%.1f CPU-s)", score.step, score.right,
                         score.wrong, score.declined, score.n, score.offstore_sent, score.n_offstore, score.reused,
                         score.eval_loss, score.seconds, score.cpu_s)

    return _Answers()


def scores(history: Sequence[dict[str, Any]]) -> list[CheckpointScore]:
    """Every evaluation's answer scores, in order, from a Trainer log history."""
    return [CheckpointScore.from_json(h[LOGGED]) for h in history if LOGGED in h]
