"""The loss curve people see before they approve a version: train and eval loss per step."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def loss_points(history: Sequence[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, train loss) and (step, eval loss) from a Trainer log history."""
    train = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h and "step" in h]
    evals = [(int(h["step"]), float(h["eval_loss"])) for h in history if "eval_loss" in h and "step" in h]
    return train, evals


def plot_losses(history: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Write a PNG; None when there is nothing to draw."""
    train, evals = loss_points(history)
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display: workers are headless
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train loss (answer tokens)", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals), marker="o", label="validation loss", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
