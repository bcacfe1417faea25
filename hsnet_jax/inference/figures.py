"""The figures a run leaves besides Fig. 6 (`hsnet_jax.inference.metrics.plot_confusion_matrix`):
training curves, the paper's Fig. 5 (test faces with the recognised expression) and FGAL's
gates per expression. matplotlib with the Agg backend: no display needed on servers."""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

RIGHT, WRONG = "#1a7f37", "#cf222e"  # title colours of the examples grid
LEVELS = ("A", "B", "C")  # FGAL's levels, from the largest feature map (F^A) to the smallest


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_history(workdir: str) -> str:
    """WORKDIR/training_curves.png: loss and accuracy per epoch, from metrics.jsonl."""
    plt = _pyplot()
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    epochs = [r["epoch"] + 1 for r in records]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_ax.plot(epochs, [r[key] for r in records], marker="o", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation"),
                       ("val_mean_accuracy", "validation, mean per class")):
        acc_ax.plot(epochs, [r[key] for r in records], marker="o", label=label)
    for ax, title in ((loss_ax, "cross-entropy loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(workdir, "training_curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def example_indices(labels: np.ndarray, num_classes: int, per_class: int) -> list[list[int]]:
    """Per true class, the first `per_class` samples in split order: the same faces in every
    figure of a split, whichever run or checkpoint is shown."""
    labels = np.asarray(labels)
    return [np.flatnonzero(labels == c)[:per_class].tolist() for c in range(num_classes)]


def plot_examples(images: np.ndarray, cells: Sequence[dict[str, Any]], path: str, per_class: int,
                  title: str | None = None) -> None:
    """Fig. 5: a grid of faces, one row per true class, each titled with the predicted
    expression and its probability, green when right, red when wrong.

    `cells`: {"index" (into `images`), "true", "predicted", "probability", "right"} per face,
    grouped by true class (`hsnet_jax.evaluate` chooses them with `example_indices`).
    """
    plt = _pyplot()
    rows: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        rows.setdefault(cell["true"], []).append(cell)
    fig, axes = plt.subplots(len(rows), per_class, figsize=(1.9 * per_class, 2.05 * len(rows)), squeeze=False)
    for (true, row), row_axes in zip(rows.items(), axes):
        row_axes[0].set_ylabel(true, fontsize=9)
        for j, ax in enumerate(row_axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(row):
                ax.axis("off")
                continue
            cell = row[j]
            ax.imshow(images[cell["index"]])
            ax.set_title(f"{cell['predicted']} {100 * cell['probability']:.0f}%", fontsize=8,
                         color=RIGHT if cell["right"] else WRONG)
    fig.suptitle(title or "recognised expression (rows: true expression)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_gates(gates: dict[str, Any], path: str, title: str | None = None) -> None:
    """FGAL's mean gates per true class (`hsnet_jax.inference.metrics.gates_per_class`) as grouped bars:
    which level of the hierarchy each expression leans on. Classes without samples are left out."""
    plt = _pyplot()
    names = [name for name, value in gates.items() if value is not None]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2.0), 3.6))
    width = 0.8 / len(LEVELS)
    for k, level in enumerate(LEVELS):
        ax.bar(x + (k - 1) * width, [gates[name][level] for name in names], width,
               label=f"gate {level} (F^{level})")
    ax.set_xticks(x, labels=names, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("mean sigmoid gate")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=3, loc="upper center")
    ax.set_title(title or "FGAL gates per true expression")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
