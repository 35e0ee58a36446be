"""Training across processes (trainer.launch): the same `accelerate launch` path a multi-GPU host takes, here with
two gloo processes on CPU, trains the tiny model to the same losses and the same adapter as one process."""

import pytest

from tests.trainer.conftest import ROWS, rows, tiny_config
from trainer.launch import FSDP_QLORA, RANK_RAISED, LaunchPlan, accelerate_command, failure_reason, plan, train


def _adapter(path):
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


@pytest.mark.slow
def test_two_processes_train_the_same_adapter_as_one(tiny_base, tmp_path):
    train_rows, val_rows = rows(), rows(ROWS[:3], prefix="v")
    # The same batches: all 12 conversations (with the unknown questions) in each step, in one process or 6 in each
    # of two. (Smaller batches would be drawn differently per process, and Adam's first steps move a weight by about
    # the learning rate whatever its gradient's size: a different batch gives a different adapter.)
    one = train(tiny_config(tiny_base, epochs=4, batch_size=12), train_rows, val_rows, tmp_path / "one")
    progress = []
    two = train(tiny_config(tiny_base, epochs=4, batch_size=6, processes=2), train_rows, val_rows, tmp_path / "two",
                on_progress=progress.append)

    assert plan(tiny_config(tiny_base, processes=2), gpus=0) == LaunchPlan(2, "cpu", "ddp")
    assert (one.steps, two.steps) == (4, 4) and one.n_train == 12 and not two.stopped
    def losses(r):
        return [h["loss"] for h in r.history if "loss" in h]
    assert losses(two) == pytest.approx(losses(one), rel=1e-4)
    assert two.eval_loss == pytest.approx(one.eval_loss, rel=1e-4)
    assert two.tokens == one.tokens  # both processes' tokens counted
    a, b = _adapter(tmp_path / "one"), _adapter(tmp_path / "two")
    assert a.keys() == b.keys() and a
    worst = max(float((b[n].float() - a[n].float()).abs().max() / a[n].float().abs().max()) for n in a)
    print(f"largest adapter difference: {worst:.2e} of the tensor's largest weight")
    assert worst < 1e-3
    assert any(p.step == 4 for p in progress)  # rank 0's progress reached this process
    assert not list((tmp_path / "two").glob("checkpoints/*"))  # written once, cleaned once
    assert not (tmp_path / "two" / "launch").exists()


def test_the_launch_command_for_each_host():
    request = "/data/adapters/ft-1-v1/launch/request.pkl"
    cpu = accelerate_command(LaunchPlan(2, "cpu", "ddp"), request, port=29500)
    assert cpu[-3:] == ["-m", "trainer.launch", request] and "--multi_gpu" in cpu  # torchrun: gloo without CUDA
    assert cpu[cpu.index("--num_processes") + 1] == "2"
    ddp = accelerate_command(LaunchPlan(4, "cuda", "ddp"), request, port=29500)
    assert "--multi_gpu" in ddp and "--use_fsdp" not in ddp
    fsdp = accelerate_command(LaunchPlan(8, "cuda", "fsdp"), request, port=29500)
    assert "--use_fsdp" in fsdp and fsdp[fsdp.index("--fsdp_cpu_ram_efficient_loading") + 1] == "true"
    assert all(fsdp[fsdp.index(f"--{k}") + 1] == v for k, v in FSDP_QLORA.items())
    # A process per visible GPU; QLoRA (asked for, or the base does not fit one GPU) shards with FSDP.
    assert plan(tiny_config("/base", processes=0), gpus=1) == LaunchPlan(1, "cuda", "single")
    assert plan(tiny_config("/base", processes=0), gpus=4, qlora=False) == LaunchPlan(4, "cuda", "ddp")
    assert plan(tiny_config("/base", processes=0), gpus=4, qlora=True) == LaunchPlan(4, "cuda", "fsdp")
    with pytest.raises(ValueError, match="2 GPU"):
        plan(tiny_config("/base", processes=4), gpus=2)


@pytest.mark.slow
def test_a_stop_reaches_every_process_at_the_same_step(tiny_base, tmp_path):
    progress = []
    result = train(tiny_config(tiny_base, epochs=50, batch_size=3, processes=2), rows(), [], tmp_path / "two",
                   on_progress=progress.append, should_stop=lambda: bool(progress), progress_every_s=0.0)
    assert result.stopped and 0 < result.steps < result.total_steps  # no process waited for the other forever
    assert list((tmp_path / "two").glob("checkpoints/checkpoint-*"))  # the checkpoint a later attempt resumes from
    assert not (tmp_path / "two" / "adapter_model.safetensors").exists()


def test_a_failed_launch_names_what_the_rank_raised_not_torchruns_summary():
    # As torchrun relays a rank's failure: its traceback, then ~40 lines of its own summary ending the output.
    out = ["[rank1]: Traceback (most recent call last):",
           '[rank1]:   File "/app/trainer/train.py", line 40, in build_trainer',
           '[rank1]:     raise OSError(f"{e}") from e',
           "[rank1]: OSError: /data/base is not a model folder",
           "[rank0]: RuntimeError: Connection closed by peer",
           "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
           *["  exitcode  : 1 (pid: 7300)"] * 40]
    raised = [line for line in out if RANK_RAISED.match(line)]
    assert failure_reason(raised, out[-40:]) == "[rank1]: OSError: /data/base is not a model folder"
    assert failure_reason([], ["loading", "ValueError: bad rows", "done"]) == "ValueError: bad rows"
    assert failure_reason([], []) == "no output"
