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


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display): every figure of the package."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# (metrics.jsonl key, legend label, line style, marker) per panel: each line its own dash and
# marker, so a line drawn over another with equal values (validation accuracy and mean
# accuracy on a balanced set) still shows under it.
LOSS_LINES = (("train_loss", "train", "-", "o"), ("val_loss", "validation", "--", "s"))
ACCURACY_LINES = (("train_accuracy", "train", "-", "o"), ("val_accuracy", "validation", "--", "s"),
                  ("val_mean_accuracy", "validation, mean per class", ":", "^"))
MAX_MARKERS = 20  # per line: a 500-epoch run gets a marker every 25 epochs, not a solid band


def lr_cuts(records: Sequence[dict[str, Any]]) -> list[tuple[int, float]]:
    """(epoch, new lr_scale) of each cut of the plateau schedule: the 1-based epochs that trained
    with a lower rate than the epoch before them."""
    return [(r["epoch"] + 1, r["lr_scale"]) for prev, r in zip(records, records[1:])
            if r.get("lr_scale", 1.0) < prev.get("lr_scale", 1.0)]


def history_figure(records: Sequence[dict[str, Any]]):
    """The training-curves figure of metrics.jsonl's records (a matplotlib Figure, not drawn):
    loss and accuracy per epoch on integer epoch ticks, each learning-rate cut a vertical line
    on both panels, half an epoch before the first epoch at the new rate."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] + 1 for r in records]
    every = max(1, -(-len(epochs) // MAX_MARKERS))
    fig = Figure(figsize=(10, 4), layout="tight")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, lines, title in ((loss_ax, LOSS_LINES, "cross-entropy loss"), (acc_ax, ACCURACY_LINES, "accuracy")):
        for j, (key, label, style, marker) in enumerate(lines):  # markers staggered between the lines
            ax.plot(epochs, [r[key] for r in records], linestyle=style, marker=marker,
                    markevery=(j * every // len(lines), every),
                    markersize=5, markerfacecolor="none", label=label)
        for i, (epoch, scale) in enumerate(lr_cuts(records)):
            ax.axvline(epoch - 0.5, color="0.4", linestyle="-.", linewidth=1,
                       label=None if i else "learning-rate cut", gid="lr_cut")
            if ax is loss_ax:  # the new rate, once, at the top of the line
                ax.text(epoch - 0.5, 0.98, f" lr x{scale:g}", transform=ax.get_xaxis_transform(), fontsize=7,
                        color="0.3", rotation=90, ha="right", va="top")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def plot_history(workdir: str) -> str:
    """WORKDIR/training_curves.png: `history_figure` of WORKDIR/metrics.jsonl."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    path = os.path.join(workdir, "training_curves.png")
    history_figure(records).savefig(path, dpi=100)
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
    plt = pyplot()
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
    plt = pyplot()
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
