"""Training settings: the defaults as one flat, commented list, saved next to the adapter they made.

`TrainConfig` is what a person may reason about; `device_setup(cfg)` turns it into what this
machine should do (precision, gradient checkpointing, QLoRA, threads, batching), so CPU and GPU
share one code path. Both go into the adapter's train_config.json.

The defaults were measured on the 2-core CPU machine with SmolLM2-135M-Instruct on the
Quillmate export (bench/train_quality.py, bench/train_throughput.py; numbers in the docstrings
there and in the trainer report).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.contract import (
    CHECKPOINT_RULES,
    DEFAULT_SYSTEM_PROMPT,
    GROUNDING,
    LORA_RANKS,
    REUSE,
    GroundingSpec,
    ReuseSpec,
)
from core.machine import cpu_has_bf16, physical_cores

# The preference stage's losses (TrainConfig.preference_loss → TRL DPOConfig.loss_type): anchored ones only; plain
# "sigmoid" DPO can lower the chosen answer's likelihood too on lightly edited pairs.
PREFERENCE_LOSSES = {"sigmoid+sft": ["sigmoid", "sft"], "apo_zero": ["apo_zero"]}


@dataclass
class TrainConfig:
    base_model: str = ""  # a local HF causal-LM directory (trainer.base_model.resolve_base_model)
    # LoRA
    rank: int = 16  # r; one of LORA_RANKS
    alpha: int = 32  # lora_alpha; scale = alpha / rank
    dropout: float = 0.05  # lora_dropout
    target_modules: str | list[str] = "all-linear"  # every linear layer but the output head
    # optimisation (measured on Quillmate, SmolLM2-135M, 2-core CPU: see bench/train_quality.py)
    # Measured with retrieval on (bench/train_quality.py, Quillmate, 25 held-out questions, key fact with the
    # retrieved pairs in front; probe base 0.75): lr 2e-3 on a 3-epoch schedule is best after epoch 1 (0.72, probe
    # 0.92) and worse after epoch 2 (0.64, probe 0.67; train loss 0.04: it memorises), in two runs. So: a 3-epoch
    # schedule, stopped once validation loss rises (patience 1) and the best epoch kept (keep_best): ~2 epochs of
    # time, epoch 1's adapter. A 2-epoch schedule gave 0.68 / 0.64, a 1-epoch one 0.60-0.68; lr 4e-3 (plain, no
    # retrieval) collapsed the probe to 0.33-0.50. ~12 min an epoch for 115 pairs on the 2-core CPU.
    epochs: float = 3.0
    lr: float = 2e-3  # LoRA on a 135M model takes a large rate; forgetting grows with it (replay offsets it)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    # conversations per optimizer step (8: 143 tokens/s on the CPU vs 127 at 4 and 117 at 16 with the whole batch in
    # one pass, before trainer.loss); how many go through at once is device_setup's micro_batch
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512  # tokens per conversation; longer examples are reported and left out
    seed: int = 42
    # data
    every_phrasing: bool = True  # teach each fact through every stored question for it (trainer.data)
    loss_on: str = "answer"  # "answer": loss on the assistant's answer only; "all": the question too
    replay: bool = True  # general questions with the base model's own answers, against forgetting (trainer.replay)
    replay_max: int = 0  # use at most this many replay questions (0: all 48); the offline demo takes fewer
    replay_weight: int = 2  # each replay pair seen this often per epoch (probe, 12 questions, is noisy: 1 → 0.58,
    #                         2 → 0.67 at lr 4e-3, 3 → 0.50; base 0.75)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT  # the same one the server answers with
    # retrieval (core.prompt's shape, as the bot asks): approved examples are taught with their nearest
    # other approved pairs in front, chosen by core.contract.RETRIEVAL as the bot chooses them, and unknown
    # questions with none, answered "I don't know"
    retrieval: bool = True
    # The bot's grounding check (FT_ANSWER_MIN_SCORE, FT_ANSWER_MAX_GAP): the evaluation judges what the bot would send
    # with the same spec.
    grounding: GroundingSpec = GROUNDING
    # Also teach "I don't know" behind loosely related pairs (trainer.data). On: off-store questions 3/6 honest, but
    # some answerable ones refused; off: 1/6 honest, key fact with retrieval 0.68 vs 0.60 (1-epoch runs).
    unknown_with_context: bool = True
    # Share of support questions also taught with the pairs stating their fact taken out of the context,
    # answered "I don't know" (trainer.data.without_fact): refusing by whether the fact is there, not the topic.
    # Measured at 0.3 instead of unknown_with_context (bench/grounded.py): key fact 16/25 vs 15/25, off-store
    # honesty 2/6 as before, probe 0.83 vs 0.92: no honesty gained, so off.
    refuse_without_fact: float = 0.0
    # evaluation and stopping
    eval_each_epoch: bool = True  # validation loss after every epoch
    early_stopping_patience: int = 1  # evaluations without a better eval loss before stopping; 0: never
    early_stopping_threshold: float = 0.0
    # True: the adapter of the epoch with the lowest eval loss (Trainer's load_best_model_at_end), else the last.
    # With retrieval, the lowest eval loss and the best key fact + retrieval fell on the same epoch (epoch 1) in
    # every multi-epoch Quillmate run.
    keep_best: bool = True
    # What chooses the kept checkpoint (keep_best) and stops early (the patience above): "eval_loss", or "answers":
    # the validation split answered as the bot answers it at each evaluation, and core.contract.CHECKPOINT_RULES'
    # rule (fewest wrong, then most right, then eval loss; trainer.checkpoint). Costs one short greedy answer per
    # validation and off-store question per evaluation. "eval_loss" until bench/trust.py --variants measures the
    # rule on Quillmate (issue 29).
    checkpoint_by: str = "eval_loss"
    checkpoint_max_new_tokens: int = 48  # the answers scored during training: the key fact comes first, if at all
    # The bot's reuse of an approved answer as it is (FT_REUSE_MIN_SCORE): the checkpoint scores count what the
    # customer would get, and a reused answer is the same at every checkpoint (not generated there).
    reuse: ReuseSpec = REUSE
    checkpoints_kept: int = 1  # newest checkpoints kept in out_dir/checkpoints (resume needs one)
    save_every_steps: int = 0  # 0: a checkpoint (and eval) per epoch; N: every N steps instead
    # machine
    threads: int = 0  # torch threads on CPU; 0: the physical cores
    qlora: bool = False  # 4-bit NF4 base (bitsandbytes, CUDA or CPU); chosen on CUDA when bf16 weights do not fit
    # Training processes (trainer.launch: accelerate launch, DDP for LoRA, FSDP + QLoRA when the base does not fit one
    # GPU); 0: one per visible GPU, one on CPU. batch_size is per process.
    processes: int = 0
    max_new_tokens: int = 96  # evaluation answers
    # preference stage (trainer.preference), after SFT: the SFT adapter trained further on the team's corrections of
    # its drafts (edits; discarded as wrong, then answered; 👎 + correction), its frozen copy the reference, an
    # anchored loss; kept only when trainer.gate finds it loses to SFT alone on nothing (held-out, probe, live).
    # Quality is not measured on Quillmate yet (bench/preference.py does): until then these are reasoned defaults.
    # Cost, measured on SmolLM2-135M, LoRA r16, 2-core CPU shared with a benchmark and other tests (load 6-10, so
    # absolutes are high; one run each): 20 records shaped as the bot asks (system prompt, 3 retrieved pairs, question;
    # 159 tokens with the answer), batch 8, one epoch (3 steps): 515 CPU-s, 952 s wall, peak RSS 2.2 GB with the output
    # head at the answers alone (trainer.loss; 1610 s and 2.8 GB with TRL's head at every position): ~26 CPU-s per
    # record and epoch, then a second evaluation (SFT's figures are reused, the new adapter's answers are not).
    # Off: issue 26 ships the stage on only once the bench shows right answers gained and no wrong ones added.
    preference: bool = False
    # One full batch (batch_size 8): fewer records make one partial step of noise, yet still pay the whole second
    # evaluation (minutes); 8 records x 2 epochs is ~7 CPU-min of training at the rate above.
    preference_min_records: int = 8
    # "sigmoid+sft": DPO's sigmoid loss plus the chosen answer's NLL (RPO; TRL 1.x's replacement of rpo_alpha), the
    # guard against lowering both answers' likelihood when chosen and rejected differ by a light edit (arXiv
    # 2410.08847); "apo_zero": anchored on its own (chosen up, rejected down, each against the reference).
    preference_loss: str = "sigmoid+sft"
    preference_beta: float = 0.1  # how far from the SFT adapter it may move; DPO's and TRL's usual 0.1
    # LoRA takes a larger rate than full fine-tuning (TRL's DPO default 1e-6 is for all weights). Measured above: one
    # step at 2e-4 raised the chosen answers' log-probability 1.65 nats over the reference (rewards/chosen 0.165),
    # the rejected ones' as much (light edits share most tokens; the sft term lifts both): the model moves; the
    # margin (0.0007 after one step) is what the bench has to show growing.
    preference_lr: float = 2e-4
    preference_epochs: float = 2.0  # few records, each seen twice; the gate judges the result
    preference_sft_weight: float = 1.0  # weight of the "sft" term beside the sigmoid one (the RPO paper's alpha=1)

    def __post_init__(self) -> None:
        if self.rank not in LORA_RANKS:
            raise ValueError(f"rank={self.rank} is not one vLLM serves; choose one of {LORA_RANKS}")
        if not 0.0 <= self.refuse_without_fact <= 1.0:
            raise ValueError(f"refuse_without_fact={self.refuse_without_fact}: a share between 0 and 1")
        if self.loss_on not in ("answer", "all"):
            raise ValueError(f"loss_on={self.loss_on!r}: 'answer' or 'all'")
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size < 1 or self.max_length < 16:
            raise ValueError(f"bad training settings: epochs={self.epochs} lr={self.lr} "
                             f"batch_size={self.batch_size} max_length={self.max_length}")
        if self.checkpoint_by not in CHECKPOINT_RULES:
            raise ValueError(f"checkpoint_by={self.checkpoint_by!r}: one of {', '.join(CHECKPOINT_RULES)}")
        if self.checkpoint_max_new_tokens < 1:
            raise ValueError(f"checkpoint_max_new_tokens={self.checkpoint_max_new_tokens}: at least 1")
        if self.preference_loss not in PREFERENCE_LOSSES:
            raise ValueError(f"preference_loss={self.preference_loss!r}: one of {', '.join(PREFERENCE_LOSSES)}")
        if (self.preference_beta <= 0 or self.preference_lr <= 0 or self.preference_epochs <= 0
                or self.preference_sft_weight < 0 or self.preference_min_records < 1):
            raise ValueError(f"bad preference settings: beta={self.preference_beta} lr={self.preference_lr} "
                             f"epochs={self.preference_epochs} sft_weight={self.preference_sft_weight} "
                             f"min_records={self.preference_min_records}")

    @property
    def answer_min_score(self) -> float:  # the spec's thresholds under their Settings names
        return self.grounding.min_score

    @property
    def answer_max_gap(self) -> float:
        return self.grounding.max_gap

    def with_overrides(self, params: dict[str, Any] | None) -> "TrainConfig":
        """A copy with a job's parameters applied (storage.jobs.check_params keys, or any field name)."""
        names = {f.name for f in fields(self)}
        unknown = set(params or {}) - names
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in (params or {}).items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, as train_config.json and a version's metrics hold them."""
        return {**asdict(self), "grounding": self.grounding.model_dump(), "reuse": self.reuse.model_dump()}

    def preference_settings(self) -> dict[str, Any]:
        """The preference stage's settings, as saved with its adapter and shown in PreferenceStage.config; loss_type and
        loss_weights as TRL's DPOConfig takes them."""
        types = PREFERENCE_LOSSES[self.preference_loss]
        return {"on": self.preference, "min_records": self.preference_min_records, "loss": self.preference_loss,
                "loss_type": list(types),
                "loss_weights": [self.preference_sft_weight if t == "sft" else 1.0 for t in types],
                "beta": self.preference_beta, "lr": self.preference_lr, "epochs": self.preference_epochs,
                "sft_weight": self.preference_sft_weight}

    def to_json(self, setup: "DeviceSetup | None" = None, checkpoint: dict[str, Any] | None = None) -> str:
        """checkpoint: which checkpoint was kept and by what rule (trainer.train), saved beside the settings."""
        data: dict[str, Any] = {"train": self.as_dict()}
        if setup is not None:
            data["device"] = asdict(setup)
        if checkpoint is not None:
            data["checkpoint"] = checkpoint
        return json.dumps(data, indent=2, sort_keys=False)

    def save(self, path: Path, setup: "DeviceSetup | None" = None, checkpoint: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        path.write_text(self.to_json(setup, checkpoint) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        saved = json.loads(Path(path).read_text(encoding="utf-8"))["train"]
        if "grounding" not in saved:  # files written before the spec: its two thresholds, flat
            old = {"min_score": saved.get("answer_min_score"), "max_gap": saved.get("answer_max_gap")}
            saved["grounding"] = {k: v for k, v in old.items() if v is not None}
        saved["grounding"] = GroundingSpec.model_validate(saved["grounding"])
        saved["reuse"] = ReuseSpec.model_validate(saved.get("reuse") or {})  # older files: the default
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})  # older files carry retired settings


# Conversations per forward/backward pass on CPU: activations, not weights, fill a CPU training's memory (~2 MB a
# token for SmolLM2 in fp32), so the step's batch goes through in small parts and accumulates (device_setup).
MICRO_BATCH_CPU = 2
# A pass over at most this many tokens trains without gradient checkpointing on CPU (fit_checkpointing): checkpointing
# buys memory with a second forward pass, and short passes do not need the memory. Measured on the 2-core EPYC,
# SmolLM2-135M, quiet machine, the same eval loss each way (to 3 decimals):
# - Quillmate, 6 steps of batch 8 (bench/train_throughput.py): 2 at a time, checkpointed 165 tokens/s, peak RSS
#   2.40 GB; 1 at a time, not checkpointed 208 tokens/s, 2.29 GB; 2 at a time, not checkpointed 235 tokens/s, 3.76 GB;
# - `make demo`'s job (85 conversations of at most 393 tokens, 2 epochs): training 227 s checkpointed 2 at a time,
#   180 s not checkpointed 1 at a time (peak RSS 2.98 GB both), 163 s not checkpointed 2 at a time (4.5 GB).
CHECKPOINT_FREE_TOKENS_CPU = 512


@dataclass
class DeviceSetup:
    """What this machine does with a TrainConfig. One code path: only these values differ."""

    device: str  # "cuda" | "cpu"
    dtype: str  # "bfloat16" | "float32"
    bf16: bool
    gradient_checkpointing: bool
    qlora: bool
    # what the base model's linear layers multiply in: `dtype`, or with QLoRA the dtype its 4-bit layers dequantise
    # to (bnb_4bit_compute_dtype), which the LoRA weights also train in (the adapter is saved in fp32)
    compute_dtype: str
    threads: int
    group_by_length: bool  # batches of similar lengths: no padding a batch out to one long example
    reason: list[str] = field(default_factory=list)
    # conversations per forward/backward pass; the Trainer accumulates batch_size / micro_batch of them per step, so
    # the optimisation (batch_size x grad_accum conversations a step) is the same on every machine
    micro_batch: int = 0  # 0: the whole batch_size at once
    # how the output head meets the loss (trainer.loss): "trl", TRL's fused head, which on CUDA (Triton) scores only
    # the labelled positions; "gathered", the same head given the labelled positions alone (CPU, where TRL's scores all)
    fused_loss: str = "gathered"
    # CPU: passes of at most this many tokens train without gradient checkpointing (fit_checkpointing, once the data
    # is tokenized); 0: as set above, whatever the data
    checkpoint_free_tokens: int = 0


def model_params(model_dir: str | Path) -> int:
    """Parameter count read from the safetensors headers (no weights loaded); 0 when unknown."""
    import struct

    total = 0
    for path in Path(model_dir).glob("*.safetensors"):
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        for name, meta in header.items():
            if name != "__metadata__":
                n = 1
                for d in meta["shape"]:
                    n *= d
                total += n
    return total


def device_setup(cfg: TrainConfig, *, cuda: bool | None = None, gpu_free_bytes: int | None = None,
                 cpu_bf16: bool | None = None) -> DeviceSetup:
    """CUDA: bf16, gradient checkpointing, QLoRA when asked or when bf16 weights would not fit, TRL's fused head
    (Triton: the labelled positions only). CPU: fp32, gradient checkpointing (off for short passes: fit_checkpointing),
    torch threads = physical cores, length-grouped batches of MICRO_BATCH_CPU conversations at a time (fewer for short
    passes), the output head at the labelled positions only
    (trainer.loss); QLoRA when asked, its 4-bit layers computing in bf16 where the CPU has bf16 units (AVX512-BF16 or
    AMX; cpu_bf16 overrides the check), else in fp32. QLoRA runs the same code on both: only these values differ.

    Measured for the CPU on the 2-core AVX512-BF16 EPYC, SmolLM2-135M, the Quillmate conversations, 4 steps of batch
    8, one run, other engineers' tests sharing the cores (bench/train_throughput.py; ratios hold, absolutes do not):
    - run 1: before (whole batch at once, TRL's head at every position): 32.3 tokens/s, peak RSS 13.8 GB, eval loss
      2.8532; the head at the labelled positions, 2 conversations at a time: 77.3 tokens/s (2.4x), 3.59 GB, 2.8524;
      the same with bf16 autocast: 26.3 tokens/s, 3.00 GB, 2.8791, so plain LoRA stays fp32 (autocast casts the
      fp32 weights in every pass; bf16's 1.4x is QLoRA's, whose 4-bit layers dequantise to bf16 anyway);
    - run 2: TRL's default SFTConfig 21.6 tokens/s, 5.36 GB, 3.1253; 2 at a time with gradient checkpointing 65.1
      tokens/s (3.0x), 2.29 GB, 2.8524; 1 at a time without it 29.6 tokens/s, 2.30 GB, 2.8534 (slower, same memory);
      so 2 at a time, checkpointed: under 3 GB where 2 at a time alone peaked at 3.6;
    - padding-free (TRL padding_free) is not used: sdpa/eager on CPU do not stop attention at the boundaries of
      conversations packed in a row (notes/api-facts.md §11); length-grouped batches cut the padding instead.
    Threads were not re-measured (the cores were shared during these runs): physical cores, as measured before."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if cuda:
        reason = []
        qlora = cfg.qlora
        if qlora:
            reason.append("QLoRA asked for")
        else:
            if gpu_free_bytes is None:
                import torch

                gpu_free_bytes = torch.cuda.mem_get_info()[0]
            need = model_params(cfg.base_model) * 2 * 1.5 if cfg.base_model else 0  # bf16 weights + headroom
            if need and need > gpu_free_bytes:
                qlora = True
                reason.append(f"bf16 weights (~{need / 2**30:.1f} GiB with headroom) exceed free GPU memory "
                              f"({gpu_free_bytes / 2**30:.1f} GiB): QLoRA")
        return DeviceSetup("cuda", "bfloat16", True, True, qlora, "bfloat16", cfg.threads or physical_cores(), True,
                           reason, fused_loss="trl")
    reason = [f"CPU: fp32, gradient checkpointing, {MICRO_BATCH_CPU} conversations at a time"]
    compute = "float32"
    if cfg.qlora:
        # Measured on the 2-core AVX512-BF16 EPYC (SmolLM2-135M, Quillmate, batch 8, 7 steps, twice): NF4 layers
        # computing in bf16 train at 246-285 tokens/s, in fp32 at 192-199 (plain fp32 LoRA 185-195; bench/qlora.py),
        # with the same losses to 2-3 decimals.
        compute = "bfloat16" if (cpu_has_bf16() if cpu_bf16 is None else cpu_bf16) else "float32"
        reason.append(f"QLoRA asked for: 4-bit NF4 base computing in {compute}")
    return DeviceSetup("cpu", "float32", False, True, cfg.qlora, compute, cfg.threads or physical_cores(), True,
                       reason, micro_batch=MICRO_BATCH_CPU, checkpoint_free_tokens=CHECKPOINT_FREE_TOKENS_CPU)


def fit_checkpointing(setup: DeviceSetup, batch_size: int, longest: int) -> DeviceSetup:
    """`setup` for data whose longest conversation has `longest` tokens: without gradient checkpointing when a pass
    of as many of them as fit in setup.checkpoint_free_tokens (at least one; at most setup.micro_batch, dividing
    batch_size) stays within it, else as it is. The losses are the same either way; trainer.train.build_trainer
    calls it once the data is tokenized."""
    fits = setup.checkpoint_free_tokens // longest if longest else 0
    if not (setup.gradient_checkpointing and fits):
        return setup
    micro = max(n for n in range(1, min(fits, setup.micro_batch or batch_size) + 1) if batch_size % n == 0)
    return replace(setup, gradient_checkpointing=False, micro_batch=micro, reason=[
        *setup.reason, f"no gradient checkpointing: {micro} conversation(s) at a time of at most {longest} tokens "
                       f"fit in {setup.checkpoint_free_tokens}"])
