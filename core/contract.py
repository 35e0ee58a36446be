"""What the trainer, the model server and the bot must agree on, written once.

Every package may import core, so the shared facts live here and nowhere else:

- the adapter rules: the LoRA ranks vLLM serves, what else in an adapter_config.json it refuses, the names
  both servers take and the one weights format they read;
- the default system prompt the trainer teaches with and the bot asks with;
- the retrieval spec: which embedding model, how many pairs, how close, what text a row is embedded
  from and what text a question is searched with;
- the records that cross package lines in JSON columns: a version's evaluation (`VersionMetrics`,
  ModelVersion.metrics) and a running job's progress (`JobProgress`, TrainingJob.progress).

Standard library and pydantic only: the bot image imports this without torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.states import JobPhase
from core.text import clip

# --- Adapters -------------------------------------------------------------------------------------------------

# vLLM's `max_lora_rank` is a Literal of these (vllm/config/lora.py): an adapter of any other rank cannot be served.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
RANK_CHOICES = f"{', '.join(map(str, LORA_RANKS[:-1]))} or {LORA_RANKS[-1]}"  # LORA_RANKS in help prose
RANKS_LISTED = ", ".join(map(str, LORA_RANKS))  # LORA_RANKS in error messages


# Adapter names both servers take: vLLM accepts any non-empty name but a served base model's, yet a name
# also becomes a peft adapter key (a '.' breaks its module paths), a `--lora-modules name=path` argument
# (no '='), a directory of VLLM_LORA_RESOLVER_CACHE_DIR (no '/') and part of a URL. Version names
# (`ft-<job>-v<n>`) are well inside it.
ADAPTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
# Adapter weights are read from safetensors only: adapter_model.bin is a pickle, and loading one runs
# whatever torch's weights_only unpickler lets through.
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED_WEIGHTS = "adapter_model.bin"


def adapter_name_problem(name: object) -> str | None:
    """Why `name` cannot name an adapter on either model server (None: it can)."""
    if not isinstance(name, str) or not name:
        return "the adapter name must be a non-empty string"
    if not ADAPTER_NAME.fullmatch(name):
        shown = clip(name, 60, trim=False)
        return (f"the adapter name {shown!r} is not allowed: use letters, digits, '-' and '_' (at most 100, "
                "starting with a letter or digit)")
    return None


def adapter_files_problem(adapter_dir: Path | str) -> str | None:
    """Why the adapter's weights will not be read (None: it has adapter_model.safetensors). A pickled
    adapter_model.bin is refused, not loaded: only safetensors cannot run code."""
    path = Path(adapter_dir)
    if (path / ADAPTER_WEIGHTS).is_file():
        return None
    if (path / PICKLED_WEIGHTS).is_file():
        return (f"{path} holds its weights as {PICKLED_WEIGHTS} (a pickle); only {ADAPTER_WEIGHTS} is loaded: "
                "save it with safe_serialization=True")
    return f"{path} has no {ADAPTER_WEIGHTS}"


def adapter_problems(raw: dict[str, Any], max_lora_rank: int | None = None) -> list[str]:
    """Why vLLM would refuse this adapter_config.json (empty: it serves it), after
    `vllm/lora/peft_helper.py::validate_legal`. Trainer (before saving a version) and the embedded
    server (before loading one) both ask this, so an adapter either serves is one production serves."""
    problems = []
    ranks = [("r", raw.get("r", 8))] + [(f"rank_pattern[{k}]", v) for k, v in (raw.get("rank_pattern") or {}).items()]
    for where, rank in ranks:
        if rank not in LORA_RANKS:
            problems.append(f"LoRA rank {rank} ({where}) is not one vLLM serves ({RANKS_LISTED})")
        elif max_lora_rank is not None and rank > max_lora_rank:
            problems.append(f"LoRA rank {rank} ({where}) is greater than max_lora_rank {max_lora_rank}; "
                            f"restart the server with a higher --max-lora-rank")
    if raw.get("bias", "none") != "none":
        problems.append(f"bias={raw.get('bias')!r} is not supported; train with bias='none'")
    if raw.get("modules_to_save"):
        # vLLM takes only a classifier head here; a causal LM's adapter has none. TRL adds 'lm_head' when a
        # chat template adds tokens.
        problems.append(f"modules_to_save {sorted(raw['modules_to_save'])} is not supported; train without them")
    if raw.get("use_dora"):
        problems.append("DoRA (use_dora) is not supported")
    if raw.get("lora_bias"):
        problems.append("lora_bias is not supported")
    init = raw.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().split("_")[0] in {"pissa", "olora", "corda", "loftq"}:
        problems.append(f"init_lora_weights={init!r} is not supported")
    if raw.get("layer_replication"):
        problems.append("layer_replication is not supported")
    if raw.get("alora_invocation_tokens"):
        problems.append("aLoRA is not supported")
    return problems


# --- Prompt ---------------------------------------------------------------------------------------------------

DEFAULT_SYSTEM_PROMPT = ("You are the support assistant of our company. Answer the customer's question "
                         "briefly and accurately, as our support team would.")


# --- Retrieval ------------------------------------------------------------------------------------------------

class RetrievalSpec(BaseModel):
    """How the nearest approved pairs are chosen, in training, evaluation, the smoke test and the bot."""

    model_config = ConfigDict(frozen=True)

    model: str = "all-MiniLM-L6-v2"  # the embedder (core.embedder), named in each stored vector
    k: int = 3  # pairs in front of a question
    # Cosine; measured on Quillmate (bench/retrieval.py): the lowest value that lets no off-topic question
    # through (they score at most 0.37 against question rows, 0.33 against question + answer rows) while
    # keeping nearly every right paraphrase (97 % of right top hits score at least 0.40).
    min_score: float = 0.40

    @staticmethod
    def stored_text(question: str, answer: str) -> str:
        """What an approved pair's row is embedded from: its question and its answer. The answer carries the
        words a customer's new wording often shares (Quillmate, bench/retrieval.py: the fact is among the 3
        nearest for 21 of 25 held-out questions this way, 19 of 25 with question rows)."""
        return f"{question}\n{answer}"

    @staticmethod
    def query_text(question: str) -> str:
        """What a question is searched with: the question alone, as a customer asks it."""
        return question.strip()


RETRIEVAL = RetrievalSpec()


class GroundingSpec(BaseModel):
    """When an answer is sent rather than "I don't know" (core.grounding): its source, the retrieved approved
    answer stating its key items, scores at least min_score, and no more than max_gap below the best hit.

    Measured on Quillmate as `ft ask` answers (bench/trust.py --variants, issue 29: a version trained on the CPU
    defaults; 105 held-out questions, the snapshot's 25 validation ones and 80 written paraphrases, kept out of the
    index; 43 off-store product questions written before any tuning; right / wrong / don't know, off-store refused),
    the gap at 0.05: unchecked 78 / 9 / 18, 19 of 43; 0.45: 76 / 3 / 26, 24; 0.55: 68 / 2 / 35, 29; 0.65:
    46 / 1 / 58, 35 (the base model with retrieval at 0.55: 55 / 3 / 47, 34). The default is the most right answers
    with at most 1 in 20 wrong and at least two thirds of the off-store questions refused: an off-store answer sent
    is a wrong answer no reference counts. (An earlier run on 25 held-out questions chose 0.45: 11 / 1 / 13, 29 of
    43; on this run's questions 0.45 refuses 24 of 43, and so does a version trained on the old CPU defaults.)"""

    model_config = ConfigDict(frozen=True)

    min_score: float = 0.55
    max_gap: float = 0.05


GROUNDING = GroundingSpec()


class ReuseSpec(BaseModel):
    """When the best retrieved approved answer IS the answer, with no model call (core.reuse): its cosine reaches
    min_score (above 1: never).

    Measured on Quillmate (bench/reuse.py): a replay (each fact's first question answered and approved by the lead,
    then its 98 other paraphrases asked) and a dense store (every thread approved, 138 asked leave-one-out). Right /
    wrong reuse, replay then dense: 0.60: 23 % / 5.1 %, 41 % / 9.4 %; 0.64: 16 % / 1.0 %, 29 % / 3.6 %; 0.66: 12 % /
    0 %, 25 % / 1.4 %; 0.70: 7 % / 0 %, 15 % / 0.7 %. The default is the most right reuses with at most 2 % wrong in
    both; 4 of 43 off-store questions then get a neighbouring fact's answer (0.74: none, and 2 % right). MiniLM puts
    the right fact first for only 66 % of these paraphrases at any score, which bounds what any threshold reaches."""

    model_config = ConfigDict(frozen=True)

    min_score: float = 0.66


REUSE = ReuseSpec()


# --- Records in JSON columns ----------------------------------------------------------------------------------

class _Record(BaseModel):
    # Rows written by older versions may lack fields or carry more: both read back.
    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> "Any":
        return cls.model_validate(raw or {})


class JobProgress(_Record):
    """What a running job reports (TrainingJob.progress): the worker writes it, the bot renders it."""

    step: int | None = None
    total: int | None = None
    loss: float | None = None
    eval_loss: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    phase: str = JobPhase.TRAINING  # a JobPhase


class RetrievalScores(_Record):
    key_fact: float | None = None
    key_fact_hits: int = 0
    rougeL: float | None = None


class Outcomes(_Record):
    """What the bot would send, asked as it asks and checked as it checks (core.grounding): of n validation
    questions with a key fact, how many it answers right, answers wrong, or declines; and how many of the
    off-store questions (no approved answer covers them) it declines."""

    n: int = 0  # validation questions whose reference states a key fact
    right: int = 0  # the answer sent states it
    wrong: int = 0  # an answer was sent, stating something else
    dont_know: int = 0  # "I don't know" was sent
    n_offstore: int = 0  # product questions no approved answer covers (trainer/offstore.jsonl)
    offstore_refused: int = 0  # of them, answered "I don't know"


class Scores(_Record):
    """One model's numbers on the validation questions and the probe (trainer.evaluate)."""

    key_fact: float | None = None  # share of answers stating the reference's key fact
    key_fact_hits: int = 0
    rougeL: float | None = None
    probe: float | None = None  # share of general questions still answered (forgetting)
    probe_rougeL: float | None = None
    with_retrieval: RetrievalScores | None = None  # asked as the bot asks, retrieved pairs in front
    sent: Outcomes | None = None  # ... and what the bot would send after its grounding check


class EvalScores(_Record):
    n_validation: int = 0
    n_probe: int = 0
    n_key_fact: int = 0  # validation references with a key item to check
    n_with_context: int | None = None
    base: Scores | None = None
    deployed: Scores | None = None
    new: Scores | None = None


class Sample(_Record):
    """One held-out question answered by each model; the deployment smoke test asks it again."""

    question: str = ""
    reference: str = ""
    base: str = ""
    deployed: str | None = None
    new: str = ""
    context: list[tuple[str, str]] | None = None  # the retrieved pairs in front, when asked as the bot asks
    new_with_retrieval: str | None = None
    base_with_retrieval: str | None = None
    sent: str | None = None  # what the bot would send with the new version: its answer, or "I don't know"


# --- Which checkpoint a training keeps -------------------------------------------------------------------------

# TrainConfig.checkpoint_by: what chooses the kept checkpoint (keep_best) and stops training early (patience).
CHECKPOINT_RULES = {
    "eval_loss": "the lowest validation loss",
    # Eval loss scores the reference's wording, token by token; a customer gets a fact, a wrong fact or "I don't
    # know" (issue 29: a default that kept eval loss level added wrong answers). A wrong answer sent costs more than
    # a missing right one (core.grounding's premise), and an off-store question answered is a wrong answer too (its
    # text can only state a neighbouring fact); eval loss only breaks ties, where the answers say nothing.
    "answers": "the fewest wrong answers sent (held-out questions answered with another fact, plus off-store "
               "questions answered at all), then the most right ones, then the lowest validation loss",
}


class CheckpointScore(_Record):
    """One evaluation during training: the validation split answered as the bot answers it (trainer.checkpoint),
    retrieval over the training side, a short greedy answer each, the grounding check, the key-fact judgement."""

    step: int = 0
    epoch: float = 0.0
    eval_loss: float | None = None
    n: int = 0  # validation questions whose reference states a key fact
    right: int = 0  # sent, stating the reference's key fact
    wrong: int = 0  # sent, stating something else
    declined: int = 0  # "I don't know" sent (the model declined, or the grounding check did)
    n_offstore: int = 0  # product questions no approved answer covers (trainer/offstore.jsonl)
    offstore_sent: int = 0  # of them, answered anyway
    reused: int = 0  # answered with an approved answer as it is (core.reuse): the same at every checkpoint
    seconds: float = 0.0  # wall time of the scoring (answers, checks, judgement)
    cpu_s: float = 0.0  # ... and this process's CPU time for it

    @property
    def mistakes(self) -> int:
        """Wrong facts that would reach a customer."""
        return self.wrong + self.offstore_sent


def checkpoint_rank(score: CheckpointScore) -> tuple[int, int, float]:
    """CHECKPOINT_RULES["answers"] as a sort key: the larger, the better checkpoint."""
    loss = score.eval_loss if score.eval_loss is not None else float("inf")
    return (-score.mistakes, score.right, -loss)


def checkpoint_metric(score: CheckpointScore) -> float:
    """checkpoint_rank as the one number Trainer compares (metric_for_best_model, early stopping): it orders any two
    evaluations of one training as checkpoint_rank does. A mistake outweighs every right answer (right <= n); a right
    answer outweighs any loss difference (the loss term lies in (0, 0.5])."""
    loss = score.eval_loss if score.eval_loss is not None else float("inf")
    return -score.mistakes * (score.n + 1) + score.right + 0.5 / (1.0 + loss)


class TrainSummary(_Record):
    """How a training run went (trainer.train.TrainResult adds what only the trainer reads)."""

    stopped: bool = False  # should_stop() ended it early: no adapter, a checkpoint to resume from
    steps: int = 0
    total_steps: int = 0
    epochs_done: float = 0.0
    train_loss: float | None = None  # last logged train loss (answer tokens)
    eval_loss: float | None = None  # validation loss of the adapter kept (best epoch's with keep_best, else the last)
    tokens: int = 0  # tokens processed in this run (prompt + answer, no padding)
    tokens_per_s: float = 0.0
    wall_s: float = 0.0
    resumed_from: str | None = None
    loss_plot: str | None = None
    n_train: int = 0  # conversations trained on, phrasing pairs included
    n_phrasing: int = 0  # of them: another question of the same fact → this answer
    n_replay: int = 0  # general questions with the base model's own answers
    n_context: int = 0  # support pairs taught with retrieved pairs in front
    n_unknown: int = 0  # questions taught "I don't know"
    n_validation: int = 0
    checkpoint_by: str = "eval_loss"  # a CHECKPOINT_RULES key: what chose the kept checkpoint
    kept_step: int | None = None  # the kept adapter's step (None: no evaluation during training)
    checkpoints: list[CheckpointScore] = []  # with checkpoint_by "answers": every evaluation's answers, in order


class LiveOutcomes(_Record):
    """One model's answers to the live questions (trainer.live), judged as the bot judges what it sends
    (core.grounding) and against what the team sent (core.facts, as the held-out key fact)."""

    agrees: int = 0  # sent, and states the key facts of what the team sent
    other: int = 0  # sent, stating something else
    declined: int = 0  # the grounding check or the model said it does not know
    unchecked: int = 0  # sent, but what the team sent has no number, code or name to compare


class LiveExample(_Record):
    """One live question: what the team sent and what the bot would send with each version."""

    question: str = ""
    team: str = ""
    deployed: str = ""
    new: str = ""
    deployed_outcome: str = ""  # a LiveOutcome
    new_outcome: str = ""


class LiveEval(_Record):
    """The deployed version (the base model when none is) and the new one on real questions the team answered."""

    n: int = 0  # live questions asked; each model's four counts add up to it
    n_trained: int = 0  # of them, answered by a pair the new version was trained on (it has seen the answer)
    deployed_name: str | None = None  # None: nothing comparable deployed, the base model stands in
    deployed: LiveOutcomes | None = None
    new: LiveOutcomes | None = None
    examples: list[LiveExample] = []


class PreferenceStage(_Record):
    """The preference stage after SFT (trainer.preference) and the gate's decision on it (trainer.gate): SFT alone
    and SFT + preference, side by side, on the same held-out questions, forgetting probe and live questions."""

    records: int = 0  # preference records in the job's snapshot (edits, discarded-as-wrong then answered, 👎 + fix)
    trained: bool = False  # the stage ran (enough records, and it is on)
    kept: bool = False  # the version's adapter is SFT + preference (the gate's rule held)
    reason: str = ""  # why it did not run, or why the gate kept or dropped it, in one sentence
    sft: Scores | None = None  # SFT alone
    preferred: Scores | None = None  # SFT + preference
    sft_live: LiveOutcomes | None = None
    preferred_live: LiveOutcomes | None = None
    config: dict[str, Any] = {}  # the stage's settings (loss, beta, lr, epochs, SFT weight), as saved with it
    train: dict[str, Any] = {}  # steps, loss, wall_s


# A general-probe drop (base → new) larger than this is catastrophic forgetting to warn about: the approval request
# and `ft versions` show it, and Approve asks the admin to confirm.
FORGETTING_MAX_DROP = 0.10


def forgetting_drop(metrics: "VersionMetrics") -> float | None:
    """How far the general probe fell from the base model to the new version (None: not measured)."""
    base = metrics.eval.base.probe if metrics.eval.base else None
    if base is None or metrics.probe is None:
        return None
    return round(base - metrics.probe, 4)


def forgetting_warning(metrics: "VersionMetrics") -> str | None:
    """One line for people when the probe fell by more than FORGETTING_MAX_DROP, else None."""
    drop = forgetting_drop(metrics)
    if drop is None or drop <= FORGETTING_MAX_DROP:
        return None
    base = metrics.eval.base.probe if metrics.eval.base else 0.0
    return (f"forgetting: general questions answered fell from {base:.0%} (base) to {metrics.probe:.0%} "
            f"(a {drop:.0%} drop; warned above {FORGETTING_MAX_DROP:.0%})")


class VersionMetrics(_Record):
    """A trained version's evaluation (ModelVersion.metrics): the trainer writes it; serving reads the samples
    for the smoke test, the bot renders the rest for the approver."""

    key_fact: float | None = None  # the new adapter's headline numbers (= eval.new)
    rougeL: float | None = None
    probe: float | None = None
    key_fact_with_retrieval: float | None = None
    eval: EvalScores = EvalScores()
    deployed_name: str | None = None  # the version compared against, when comparable
    train: TrainSummary = TrainSummary()
    loss_plot: str | None = None
    samples: list[Sample] = []
    max_new_tokens: int = 96  # the longest answer the samples were generated with (the smoke test asks the same)
    long_examples: list[dict[str, Any]] = []
    tokens_per_s: float | None = None
    config: dict[str, Any] = {}  # the TrainConfig, as saved next to the adapter (for people to read)
    live: LiveEval = LiveEval()  # real questions the team answered (trainer.live); older rows: empty
    preference: PreferenceStage | None = None  # the stage after SFT and the gate's decision; None: older rows
