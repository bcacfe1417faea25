"""The paper's metrics: overall accuracy (eq. 22), mean per-class accuracy (eq. 23) and the
row-normalised confusion matrix of Fig. 6.

A class with no sample among the labels has no accuracy of its own (TP_j / N_j is 0 / 0): its
`per_class` entry is `None` and the mean accuracy is taken over the classes that do occur.
Counting it as 0 would make a test split without, say, contempt look worse than it is; this is
also what scikit-learn's `balanced_accuracy_score` does.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hsnet_jax.errors import HSNetError


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, int64 [C, C]; row = true class, column = predicted class."""
    labels = np.asarray(labels, np.int64).reshape(-1)
    predictions = np.asarray(predictions, np.int64).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    for what, values in (("label", labels), ("prediction", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"a {what} is outside [0, {num_classes})")
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def classification_report(labels: np.ndarray, predictions: np.ndarray,
                          class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy (eq. 22), mean accuracy (eq. 23), per-class accuracy and the confusion matrix.

    Returns a JSON-ready dict: `accuracy`, `mean_accuracy`, `per_class` {name: accuracy or None
    when the class has no sample}, `confusion_matrix` (counts, list of lists, rows = true),
    `class_names`, `num_examples`.
    """
    class_names = [str(name) for name in class_names]
    counts = confusion_matrix(labels, predictions, len(class_names))
    total = int(counts.sum())
    if total == 0:
        raise ValueError("no examples to evaluate")
    support = counts.sum(axis=1)
    hits = np.diag(counts)
    per_class = {name: (float(hits[j] / support[j]) if support[j] else None)
                 for j, name in enumerate(class_names)}
    present = support > 0
    return {
        "accuracy": float(hits.sum() / total),
        "mean_accuracy": float(np.mean(hits[present] / support[present])),
        "per_class": per_class,
        "confusion_matrix": counts.tolist(),
        "class_names": class_names,
        "num_examples": total,
    }


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log class probabilities from logits [..., C], in float64 (stable: the max is subtracted)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits [..., C], in float64."""
    return np.exp(log_softmax(logits))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of integer `labels` (the validation loss the plateau schedule reads)."""
    logp = log_softmax(logits)
    return float(-np.mean(logp[np.arange(len(labels)), labels]))


def row_normalized(counts: Sequence[Sequence[int]]) -> np.ndarray:
    """Each row divided by its sum (the fraction of class j predicted as k); empty rows stay 0."""
    counts = np.asarray(counts, np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def plot_confusion_matrix(report: dict[str, Any], path: str, title: str | None = None) -> None:
    """Writes the report's confusion matrix as a PNG like the paper's Fig. 6.

    Rows (true class) are normalised to sum to 1 and every cell is printed, so classes of
    very different sizes (RAF-DB) read alike. The default title carries Acc. and mAcc.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed: this runs on servers and in tests
    import matplotlib.pyplot as plt

    names = report["class_names"]
    fractions = row_normalized(report["confusion_matrix"])
    size = max(4.0, 0.75 * len(names) + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    for (row, col), value in np.ndenumerate(fractions):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if value > 0.5 else "black")
    if title is None:
        title = f"Acc. {100 * report['accuracy']:.2f}%   mAcc. {100 * report['mean_accuracy']:.2f}%"
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def gates_per_class(gates: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                    levels: Sequence[str] = ("A", "B", "C")) -> dict[str, dict[str, float] | None]:
    """FGAL's gates [N, 3] (sigmoid weights of levels A, B, C per image) averaged over each
    true class: {class: {"A": mean, "B": mean, "C": mean}}, None for a class without samples."""
    gates, labels = np.asarray(gates, np.float64), np.asarray(labels)
    out: dict[str, dict[str, float] | None] = {}
    for j, name in enumerate(class_names):
        rows = gates[labels == j]
        out[str(name)] = {level: float(m) for level, m in zip(levels, rows.mean(axis=0))} if len(rows) else None
    return out


def check_finite(values: np.ndarray, what: str) -> None:
    """Non-finite network outputs are an error, never a report or a printed NaN."""
    bad = int((~np.isfinite(values)).any(axis=-1).sum())
    if bad:
        raise HSNetError(f"{what}: the network's output is not finite (NaN or inf) for {bad} of {len(values)} "
                         "images: its checkpoint or config is damaged")
