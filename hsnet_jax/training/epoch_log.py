"""What a training run records per epoch: one JSON line in WORKDIR/metrics.jsonl and the same
scalars as TensorBoard events in WORKDIR/tensorboard/ (the trainer's log; `figures.plot_history`
draws the curves from metrics.jsonl). Resuming rewrites the file without the epochs that are
trained again, so the log never holds an epoch twice."""

from __future__ import annotations

import json
import os
from typing import Any

import jax


class EpochLog:
    """metrics.jsonl + TensorBoard (tensorboardX, no TensorFlow); process 0 writes."""

    def __init__(self, workdir: str, resume_epoch: int):
        self.enabled = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        # Epochs at or after the resume point are run again: their old lines are dropped.
        self.history: list[dict[str, Any]] = []  # every epoch's record, resumed ones included
        if resume_epoch > 0 and os.path.exists(self.path):
            with open(self.path) as f:
                records = [json.loads(line) for line in f if line.strip()]
            self.history = [r for r in records if r["epoch"] < resume_epoch]
        if not self.enabled:
            return
        with open(self.path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.history)
        from tensorboardX import SummaryWriter
        self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            group, _, name = key.partition("_")
            if key != "epoch" and not isinstance(value, list):  # train_class_counts: metrics.jsonl only
                self.tb.add_scalar(f"{group}/{name}" if group in ("train", "val") else key, value,
                                   record["epoch"])
        self.tb.flush()

    def close(self) -> None:
        if self.enabled:
            self.tb.close()


def best_on_test(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch with the highest test accuracy (config.report_test_each_epoch; the first of
    ties): what DAN, POSTER++ and MA-Net publish, selected on the test split itself. None
    when the run did not score the test split every epoch."""
    scored = [r for r in history if "test_accuracy" in r]
    if not scored:
        return None
    best = max(scored, key=lambda r: r["test_accuracy"])
    return {"epoch": best["epoch"], "accuracy": best["test_accuracy"], "mean_accuracy": best["test_mean_accuracy"]}
