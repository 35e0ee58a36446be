"""An adapter folder as the embedded server reads it: a real folder of regular files, its config a JSON object.

A refused folder is a 400 naming the reason (vLLM answers a failed load with 400 too), never a 500: the
folder is the client's input. Symbolic links inside the folder are refused, not followed, so a link named
adapter_config.json cannot make the server read (and echo parts of) a file elsewhere such as /etc/shadow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from serving.errors import ServingError
from serving.validation import path_problem

CONFIG = "adapter_config.json"
MAX_CONFIG_BYTES = 1024 * 1024  # a LoRA config is a few hundred bytes


def refused(message: str) -> ServingError:
    return ServingError(400, message, param="lora_path")


def check_folder(path: Path) -> None:
    """400 for a path the OS cannot take or a folder holding symbolic links; 404 when there is no adapter."""
    problem = path_problem(str(path))
    if problem:
        raise refused(f"lora_path {problem}")
    try:
        links = sorted(entry.name for entry in os.scandir(path) if entry.is_symlink()) if path.is_dir() else []
    except OSError as exc:
        raise refused(f"cannot read the adapter folder {path}: {exc.strerror or exc}") from exc
    if links:
        raise refused(f"{path} holds symbolic links ({', '.join(links[:5])}); an adapter's files must be regular "
                      "files in its folder, and links are not followed")
    if not (path / CONFIG).is_file():
        raise ServingError(404, f"No adapter found for {path}", "NotFoundError", "lora_path")


def read_config(path: Path) -> dict[str, Any]:
    """adapter_config.json as a JSON object (opened without following a link), or 400 saying why not."""
    try:
        fd = os.open(path / CONFIG, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise refused(f"cannot read {path}/{CONFIG}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise refused(f"{path}/{CONFIG} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise refused(f"{path}/{CONFIG} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise refused(f"{path}/{CONFIG} must hold a JSON object, not {type(raw).__name__}")
    return raw
