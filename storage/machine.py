"""The cores this process may use: what the embedded engine sizes its torch threads by, and what vLLM's
CPU threads bind to."""

from __future__ import annotations

import os
from pathlib import Path


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
