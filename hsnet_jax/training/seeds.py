"""Several seeds of one run, and their spread: what `--seeds 0,1,2` of `hsnet_jax.train` and
`hsnet_jax.ablate` do.

A single run's test accuracy moves by several tenths of a point with the seed, as much as
the differences between the rows of the paper's Table 6; a mean with its sample standard
deviation over seeds is what can confirm or refute such a row.

    WORKDIR/seed_<n>/   a normal run directory per seed (config.seed = n), resumable as any;
                        one with eval/test_metrics.json is finished and is not rerun
    WORKDIR/seeds.json  per-seed test Acc./mAcc., their mean, sample std (ddof 1) and n; with
                        config.report_test_each_epoch the same of "best_epoch_on_test"

A seed's run may itself be a fold protocol (`--folds`, `hsnet_jax.training.folds`): its result
is then the mean over its folds, read from its folds.json.

The driver is handed the trainer (`train_fn(config, workdir) -> report`), so this module
does not import `hsnet_jax.train` and the trainer can dispatch here.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Sequence

import jax
import ml_collections

from hsnet_jax.errors import HSNetError
from hsnet_jax.runtime import cli

METRICS = ("accuracy", "mean_accuracy")
ON_TEST = "best_epoch_on_test"  # the report key of the test-selected number (`epoch_log.best_on_test`)
FOLDS_FILE = "folds.json"
TrainFn = Callable[[ml_collections.ConfigDict, str], dict[str, Any]]


def parse_seeds(text: str) -> list[int]:
    """"0,1,2" -> [0, 1, 2]; one-line errors for anything else."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise HSNetError(f"--seeds must be comma-separated integers like 0,1,2, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise HSNetError(f"--seeds lists a seed twice: {text!r}")
    if min(seeds) < 0:
        raise HSNetError(f"--seeds must be non-negative, got {text!r}")
    return seeds


def seed_workdir(root: str, seed: int) -> str:
    return os.path.join(root, f"seed_{seed}")


def report_path(workdir: str) -> str:
    """The file whose existence marks a run as finished (the trainer's last write)."""
    return os.path.join(workdir, "eval", "test_metrics.json")


def mean_std(values: Sequence[float]) -> dict[str, float | int]:
    """{"mean", "std" (sample, ddof 1; 0 for one value), "n"}."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def format_spread(stats: dict[str, float | int]) -> str:
    """A fraction's spread in percent, as a table cell: "86.12 ± 0.31"."""
    return f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f}"


def run_result(workdir: str) -> dict[str, Any] | None:
    """A finished run's {accuracy, mean_accuracy[, best_epoch_on_test: {accuracy, mean_accuracy}]}
    on the test split (a fold protocol's: the means over its folds); None while unfinished."""
    try:
        with open(os.path.join(workdir, FOLDS_FILE)) as f:
            folds = json.load(f)
        return {key: folds[key]["mean"] for key in METRICS} | (
            {ON_TEST: {key: folds[ON_TEST][key]["mean"] for key in METRICS}} if ON_TEST in folds else {})
    except FileNotFoundError:
        pass
    try:
        with open(report_path(workdir)) as f:
            report = json.load(f)
    except FileNotFoundError:
        return None
    return {key: report[key] for key in METRICS} | ({ON_TEST: report[ON_TEST]} if ON_TEST in report else {})


def spread(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std of each metric over runs' results (`run_result`), validation-selected
    and, when every run has it, best epoch on test."""
    out: dict[str, Any] = {key: mean_std([r[key] for r in results]) for key in METRICS}
    if all(ON_TEST in r for r in results):
        out[ON_TEST] = {key: mean_std([r[ON_TEST][key] for r in results]) for key in METRICS}
    return out


def summarize(root: str, seeds: Sequence[int]) -> dict[str, Any] | None:
    """The seeds.json content from each seed's result; None while a seed is unfinished."""
    per_seed = {str(seed): run_result(seed_workdir(root, seed)) for seed in seeds}
    if None in per_seed.values():
        return None
    return {"seeds": list(seeds), "split": "test", "per_seed": per_seed} | spread(list(per_seed.values()))


def summary_line(summary: dict[str, Any], over: str = "seeds") -> str:
    """"Acc. 86.12 ± 0.31, mAcc. 85.40 ± 0.52 (3 seeds)", followed, when the runs scored the
    test split every epoch, by the best-epoch-on-test number, labelled as such."""
    line = (f"Acc. {format_spread(summary['accuracy'])}, mAcc. {format_spread(summary['mean_accuracy'])} "
            f"({summary['accuracy']['n']} {over})")
    if ON_TEST in summary:
        on_test = summary[ON_TEST]
        line += (f" validation-selected; best epoch on test (as DAN/POSTER report): "
                 f"Acc. {format_spread(on_test['accuracy'])}, mAcc. {format_spread(on_test['mean_accuracy'])}")
    return line


def run_seeds(config: ml_collections.ConfigDict, root: str, seeds: Sequence[int],
              train_fn: TrainFn) -> dict[str, Any]:
    """Trains every unfinished seed of `config` in ROOT/seed_<n>, then writes ROOT/seeds.json.

    Returns the summary; a seed stopped by SIGTERM / Ctrl-C raises `cli.Stopped` from
    `train_fn` (it saved; rerun to go on).
    """
    root = os.path.abspath(root)
    for i, seed in enumerate(seeds, 1):
        workdir = seed_workdir(root, seed)
        if run_result(workdir) is not None:
            cli.say(f"[seed {seed}, {i}/{len(seeds)}] finished, kept ({workdir})")
            continue
        cli.say(f"[seed {seed}, {i}/{len(seeds)}] training in {workdir}")
        seeded = ml_collections.ConfigDict(config.to_dict())
        seeded.seed = seed
        train_fn(seeded, workdir)
    summary = summarize(root, seeds)
    if summary is None:  # a seed's report vanished between its run and now
        raise HSNetError(f"a seed's test report under {root} disappeared during the run")
    if jax.process_index() == 0:
        with open(os.path.join(root, "seeds.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return summary
