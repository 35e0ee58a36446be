"""Training in several processes through `accelerate launch`: a process per GPU on a host with several.

- LoRA: DDP. Every process holds the whole base model and trains on its share of each step's batches
  (TrainConfig.batch_size is per process, so a step sees processes × batch_size conversations); gradients
  are averaged over the tokens of all processes (Trainer's average_tokens_across_devices), so a step
  equals one process's step on the whole batch.
- QLoRA, asked for or chosen by device_setup because bf16 weights do not fit one GPU: FSDP + QLoRA as PEFT
  publishes it (peft examples/sft: configs/fsdp_config_qlora.yaml with run_peft_qlora_fsdp.sh; "FSDP +
  QLoRA" in PEFT's and bitsandbytes' docs): the base's 4-bit weights stored in the compute dtype
  (bnb_4bit_quant_storage = bnb_4bit_compute_dtype = bf16) so FSDP can shard them, FULL_SHARD wrapped per
  transformer layer with peft's fsdp_auto_wrap_policy, CPU-RAM-efficient loading and synced module states,
  parameters offloaded to CPU, reentrant gradient checkpointing, and a full state dict when the adapter is saved.
- CPU: the same path with gloo processes (FT_TRAIN_PROCESSES; the tests train the tiny model that way).

The job's process writes the request (config, rows, retrieved contexts) beside the adapter, runs `accelerate
launch -m trainer.launch REQUEST`, relays the progress lines rank 0 prints, and asks every rank to stop (a
file rank 0 reads, its answer shared with all ranks at each step, so they stop at the same step).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from core.contract import JobProgress
from trainer.config import TrainConfig
from trainer.context import Contexts
from trainer.train import ProgressFn, StopFn, TrainResult, train_adapter

log = logging.getLogger("ftbot.trainer")

PROGRESS_PREFIX = "ftbot-progress "
# The published FSDP + QLoRA recipe (peft examples/sft/configs/fsdp_config_qlora.yaml), as accelerate launch flags.
FSDP_QLORA = {
    "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
    "fsdp_backward_prefetch": "BACKWARD_PRE",
    "fsdp_cpu_ram_efficient_loading": "true",
    "fsdp_forward_prefetch": "false",
    "fsdp_offload_params": "true",
    "fsdp_sharding_strategy": "FULL_SHARD",
    "fsdp_state_dict_type": "SHARDED_STATE_DICT",
    "fsdp_sync_module_states": "true",
    "fsdp_use_orig_params": "false",
}


class LaunchError(RuntimeError):
    """The launched training failed; the message is the last line its processes printed."""


@dataclass(frozen=True)
class LaunchPlan:
    processes: int  # 1: train here, in this process
    device: str  # "cuda" | "cpu"
    mode: str  # "single" | "ddp" | "fsdp"

    @property
    def launched(self) -> bool:
        return self.processes > 1


def plan(cfg: TrainConfig, *, gpus: int | None = None, qlora: bool | None = None) -> LaunchPlan:
    """How many processes train this job, and how. cfg.processes 0: one per visible GPU (CUDA_VISIBLE_DEVICES
    chooses them), one on CPU. qlora: device_setup's choice (asked for, or bf16 weights do not fit one GPU)."""
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    processes = cfg.processes or max(1, gpus)
    if processes <= 1:
        return LaunchPlan(1, "cuda" if gpus else "cpu", "single")
    if gpus and processes > gpus:
        raise ValueError(f"{processes} training processes asked for, but {gpus} GPU(s) visible")
    if not gpus:
        return LaunchPlan(processes, "cpu", "ddp")
    if qlora is None:
        from trainer.config import device_setup

        qlora = device_setup(cfg).qlora
    return LaunchPlan(processes, "cuda", "fsdp" if qlora else "ddp")


def fsdp_enabled() -> bool:
    """True inside a process `accelerate launch --use_fsdp` started (train.py adapts loading, checkpointing, saving)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")


def accelerate_command(p: LaunchPlan, request: Path, *, port: int | None = None) -> list[str]:
    """`python -m accelerate.commands.launch … -m trainer.launch REQUEST` for this plan."""
    # Precision is the trainer's own (SFTConfig bf16, or the 4-bit storage and compute dtypes), not the launcher's.
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(p.processes),
            "--num_machines", "1", "--main_process_port", str(port or _free_port()), "--mixed_precision", "no",
            "--dynamo_backend", "no"]
    if p.mode == "fsdp":
        argv += ["--use_fsdp"]
        for key, value in FSDP_QLORA.items():
            argv += [f"--{key}", value]
    else:
        # DDP. On a host without CUDA the same torchrun launcher starts gloo processes (accelerate's `--cpu` would
        # go through mpirun instead, and start one process without it).
        argv += ["--multi_gpu"]
    return argv + ["-m", "trainer.launch", str(request)]


def train(cfg: TrainConfig, train_rows: Sequence[Any], val_rows: Sequence[Any], out_dir: Path, *,
          on_progress: ProgressFn | None = None, should_stop: StopFn | None = None,
          contexts: Contexts | None = None, launch: LaunchPlan | None = None, **kwargs: Any) -> TrainResult:
    """train_adapter, in this process or across the processes of `launch` (default: plan(cfg))."""
    launch = launch or plan(cfg)
    if not launch.launched:
        return train_adapter(cfg, train_rows, val_rows, out_dir, on_progress=on_progress, should_stop=should_stop,
                             contexts=contexts, **kwargs)
    return train_launched(cfg, train_rows, val_rows, out_dir, launch, on_progress=on_progress,
                          should_stop=should_stop, contexts=contexts, **kwargs)


def train_launched(cfg: TrainConfig, train_rows: Sequence[Any], val_rows: Sequence[Any], out_dir: Path,
                   launch: LaunchPlan, *, on_progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                   contexts: Contexts | None = None, resume: bool = True, progress_every_s: float = 3.0) -> TrainResult:
    out_dir = Path(out_dir)
    work = out_dir / "launch"
    work.mkdir(parents=True, exist_ok=True)
    stop_file, result_file = work / "stop", work / "result.json"
    for stale in (stop_file, result_file):
        stale.unlink(missing_ok=True)
    if launch.device == "cpu":
        from core.machine import physical_cores

        # The cores shared out: N processes of all-cores threads would only wait on each other.
        cfg = replace(cfg, threads=cfg.threads or max(1, physical_cores() // launch.processes))
    if launch.mode == "fsdp":
        cfg = replace(cfg, qlora=True)  # every rank loads the same way, whatever memory it sees free
    request = work / "request.pkl"
    request.write_bytes(pickle.dumps({
        "cfg": cfg, "train_rows": list(train_rows), "val_rows": list(val_rows), "out_dir": str(out_dir),
        "contexts": contexts, "resume": resume, "progress_every_s": progress_every_s,
        "stop_file": str(stop_file), "result_file": str(result_file)}))
    argv = accelerate_command(launch, request)
    log.info("training in %d %s processes (%s): %s", launch.processes, launch.device, launch.mode, " ".join(argv))
    # The ranks end themselves when this process is gone (a worker that lost the job's lease kills it).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FTBOT_JOB_PID": str(os.getpid())}
    if launch.device == "cpu":
        env["OMP_NUM_THREADS"] = str(cfg.threads)
    tail: list[str] = []
    raised: list[str] = []  # what the ranks raised, first failure first
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        if should_stop is not None:
            threading.Thread(target=_pass_on_stop, args=(proc, should_stop, stop_file), daemon=True).start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(PROGRESS_PREFIX):
                if on_progress is not None:
                    on_progress(JobProgress.from_json(json.loads(line[len(PROGRESS_PREFIX):])))
            elif line.strip():
                log.debug("launched: %s", line.rstrip())
                tail = (tail + [line.rstrip()])[-40:]
                if RANK_RAISED.match(line):
                    raised.append(line.strip())
        proc.wait()
    if proc.returncode != 0 or not result_file.is_file():
        reason = failure_reason(raised, tail)
        raise LaunchError(f"{launch.processes} training processes failed (exit {proc.returncode}): {reason.strip()}")
    result = TrainResult.model_validate_json(result_file.read_text())
    shutil.rmtree(work, ignore_errors=True)  # the request holds the snapshot's rows: not part of the adapter
    return result


# A rank's own exception as torchrun relays it: "[rank1]: RuntimeError: …" (its traceback's last line).
RANK_RAISED = re.compile(r"^\[rank\d+\]:\s*[\w.]*(Error|Exception|Interrupt)\b.*:")


def failure_reason(raised: Sequence[str], tail: Sequence[str]) -> str:
    """One line for the job's error: the first exception a rank raised (torchrun's own summary after it, a
    ChildFailedError, names no cause), else the last error line, else the last line."""
    if raised:
        return raised[0]
    return next((t for t in reversed(tail) if "Error" in t), tail[-1] if tail else "no output").strip()


def _pass_on_stop(proc: subprocess.Popen, should_stop: StopFn, stop_file: Path) -> None:
    """Asks the ranks to stop (the file rank 0 reads) once should_stop() says so, even while they load and print
    nothing."""
    while proc.poll() is None:
        if should_stop():
            stop_file.touch()
            return
        time.sleep(0.5)


def _die_with_job(job_pid: int) -> None:
    while True:
        try:
            os.kill(job_pid, 0)
        except ProcessLookupError:
            os._exit(70)
        except PermissionError:
            pass  # alive, another user's (not ours to signal)
        time.sleep(1.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(request_path: str) -> None:
    """One rank: train_adapter with the request; rank 0 reports progress on stdout and writes the result."""
    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    if os.environ.get("FTBOT_JOB_PID"):
        threading.Thread(target=_die_with_job, args=(int(os.environ["FTBOT_JOB_PID"]),), daemon=True).start()
    request = pickle.loads(Path(request_path).read_bytes())
    cfg: TrainConfig = request["cfg"]
    state = PartialState(cpu=not torch.cuda.is_available())
    stop_file = Path(request["stop_file"])

    def should_stop() -> bool:
        # Every rank asks at every step end (progress_callback); rank 0's answer goes to all, so all stop together.
        flag = torch.tensor([1 if state.is_main_process and stop_file.exists() else 0], device=state.device)
        if dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_progress(progress: JobProgress) -> None:
        if state.is_main_process:
            print(PROGRESS_PREFIX + json.dumps(progress.to_json()), flush=True)

    result = train_adapter(cfg, request["train_rows"], request["val_rows"], Path(request["out_dir"]),
                           on_progress=on_progress, should_stop=should_stop, resume=request["resume"],
                           progress_every_s=request["progress_every_s"], contexts=request["contexts"])
    if state.is_main_process:
        Path(request["result_file"]).write_text(json.dumps(result.to_json()))
    state.wait_for_everyone()


if __name__ == "__main__":
    _rank_main(sys.argv[1])
