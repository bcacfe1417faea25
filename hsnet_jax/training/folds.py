"""Subject-independent k-fold protocols: what `--folds K` (or `--folds loso`) of
`hsnet_jax.train` and `hsnet_jax.ablate` do.

CK+, JAFFE, Oulu-CASIA and often KDEF / RaFD are published as the mean over folds that never
put one person in training and test: CK+ over 10 folds, JAFFE leaving one subject out. Every
example of the database (all its prepared splits) is re-split by subject
(`hsnet_jax.data.splits.subject_folds`: ascending subject ids dealt round robin, as the
published CK+ fold files are); fold k tests on its subjects, validates on a seeded share
(VALIDATION_SHARE, at least one subject) of the others and trains on the rest.

    WORKDIR/fold_<k>/   a normal run directory per fold, resumable as any; one with
                        eval/test_metrics.json (its test subjects' report) is finished
    WORKDIR/folds.json  per fold {fold, test_subjects, num_test, accuracy, mean_accuracy}, their
                        mean and sample std, and the confusion matrix pooled over the folds
    WORKDIR/folds_confusion_matrix.png  that pooled matrix (Fig. 6's form)
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from hsnet_jax.errors import HSNetError
from hsnet_jax.runtime import cli
from hsnet_jax.training import seeds
from hsnet_jax.training.loop import train_and_evaluate

VALIDATION_SHARE = 0.1  # of the subjects outside the test fold, held out for model selection
LOSO = "loso"


def parse_folds(text: str) -> int | str:
    """"10" -> 10, "loso" -> "loso" (one fold per subject); one-line errors otherwise."""
    if text.strip().lower() == LOSO:
        return LOSO
    try:
        folds = int(text)
    except ValueError:
        raise HSNetError(f"--folds must be a whole number of folds (at least 2) or loso, got {text!r}") from None
    if folds < 2:
        raise HSNetError(f"--folds needs at least 2 folds, got {folds}")
    return folds


def fold_workdir(root: str, fold: int) -> str:
    return os.path.join(root, f"fold_{fold}")


def fold_splits(subjects: np.ndarray, folds: int | str, seed: int) -> list[dict[str, np.ndarray]]:
    """Per fold its example indices (train, validation, test) and its test subjects."""
    from hsnet_jax.data.splits import fold_split, subject_folds

    count = len(np.unique(subjects)) if folds == LOSO else folds
    if count > len(np.unique(subjects)):
        raise HSNetError(f"--folds {folds}: the database has only {len(np.unique(subjects))} subjects")
    return [dict(fold_split(subjects, members, VALIDATION_SHARE, seed), subjects=members)
            for members in subject_folds(subjects, count)]


def trainer(folds: int | str | None) -> seeds.TrainFn:
    """What trains one run of `train --seeds` or an ablation row: `train_and_evaluate`, or with
    `folds` that fold protocol (`run_folds`)."""
    return train_and_evaluate if folds is None else functools.partial(run_folds, folds=folds)


def run_folds(config: ml_collections.ConfigDict, root: str, folds: int | str) -> dict[str, Any]:
    """Trains every unfinished fold of `config`'s database in ROOT/fold_<k>, then writes
    ROOT/folds.json and the pooled confusion matrix; returns the summary. A fold stopped by
    SIGTERM / Ctrl-C raises `cli.Stopped` (it saved; rerun to go on)."""
    from hsnet_jax.data.loading import load_subjects

    root = os.path.abspath(root)
    whole = load_subjects(config.dataset, config.data_dir or None)
    parts = fold_splits(whole.metadata["subject"], folds, config.seed)
    for k, part in enumerate(parts):
        workdir = fold_workdir(root, k)
        if seeds.run_result(workdir) is not None:
            cli.say(f"[fold {k}, {k + 1}/{len(parts)}] finished, kept ({workdir})")
            continue
        cli.say(f"[fold {k}, {k + 1}/{len(parts)}] training in {workdir}: test subjects "
                f"{', '.join(part['subjects'])} ({len(part['test'])} images)")
        train_and_evaluate(config, workdir, data=(whole.select(part["train"]), whole.select(part["validation"])),
                           test=whole.select(part["test"]))
    summary = summarize(root, parts, config.dataset)
    if jax.process_index() == 0:
        from hsnet_jax.inference.metrics import plot_confusion_matrix

        pooled = summary["pooled"]
        title = (f"{config.dataset}, {len(parts)} folds pooled: Acc. {100 * pooled['accuracy']:.2f}%, "
                 f"mAcc. {100 * pooled['mean_accuracy']:.2f}%")
        plot_confusion_matrix(pooled, summary["plot_path"], title=title)
        with open(os.path.join(root, seeds.FOLDS_FILE), "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def summarize(root: str, parts: list[dict[str, np.ndarray]], dataset: str) -> dict[str, Any]:
    """folds.json's content from the folds' test reports."""
    from hsnet_jax.inference.metrics import classification_report

    per_fold, counts, class_names = [], 0, None
    for k, part in enumerate(parts):
        try:
            with open(seeds.report_path(fold_workdir(root, k))) as f:
                report = json.load(f)
        except FileNotFoundError:
            raise HSNetError(f"the test report of fold {k} under {root} disappeared during the run") from None
        per_fold.append({"fold": k, "test_subjects": [str(s) for s in part["subjects"]],
                         "num_test": report["num_examples"], "accuracy": report["accuracy"],
                         "mean_accuracy": report["mean_accuracy"]}
                        | ({seeds.ON_TEST: report[seeds.ON_TEST]} if seeds.ON_TEST in report else {}))
        counts = counts + np.asarray(report["confusion_matrix"], np.int64)
        class_names = report["class_names"]
    cells = np.repeat(np.arange(counts.size), counts.reshape(-1))  # the pooled (true, predicted) pairs
    pooled = classification_report(cells // len(class_names), cells % len(class_names), class_names)
    return ({"dataset": dataset, "folds": len(parts), "split": "test (each fold's subjects)",
             "validation_share": VALIDATION_SHARE, "per_fold": per_fold}
            | seeds.spread(per_fold)
            | {"pooled": pooled, "plot_path": os.path.join(root, "folds_confusion_matrix.png")})


def summary_line(summary: dict[str, Any]) -> str:
    """"Acc. 86.12 ± 0.31, mAcc. 85.40 ± 0.52 (10 folds) ...", as `seeds.summary_line`."""
    return seeds.summary_line(summary, over="folds")
