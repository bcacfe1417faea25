"""Several seeds of one run, and their spread: what `--seeds 0,1,2` of `hsnet_jax.train` and
`hsnet_jax.ablate` do.

A single run's test accuracy moves by several tenths of a point with the seed, as much as
the differences between the rows of the paper's Table 6; a mean with its sample standard
deviation over seeds is what can confirm or refute such a row.

    WORKDIR/seed_<n>/   a normal run directory per seed (config.seed = n), resumable as any;
                        one with eval/test_metrics.json is finished and is not rerun
    WORKDIR/seeds.json  per-seed test Acc./mAcc., their mean, sample std (ddof 1) and n

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


def summarize(root: str, seeds: Sequence[int]) -> dict[str, Any] | None:
    """The seeds.json content from each seed's test report; None while a seed is unfinished."""
    per_seed = {}
    for seed in seeds:
        try:
            with open(report_path(seed_workdir(root, seed))) as f:
                report = json.load(f)
        except FileNotFoundError:
            return None
        per_seed[str(seed)] = {key: report[key] for key in METRICS}
    summary: dict[str, Any] = {"seeds": list(seeds), "split": "test", "per_seed": per_seed}
    for key in METRICS:
        summary[key] = mean_std([per_seed[str(s)][key] for s in seeds])
    return summary


def summary_line(summary: dict[str, Any]) -> str:
    """"Acc. 86.12 ± 0.31, mAcc. 85.40 ± 0.52 (3 seeds)"."""
    return (f"Acc. {format_spread(summary['accuracy'])}, mAcc. {format_spread(summary['mean_accuracy'])} "
            f"({summary['accuracy']['n']} seeds)")


def run_seeds(config: ml_collections.ConfigDict, root: str, seeds: Sequence[int],
              train_fn: TrainFn) -> dict[str, Any]:
    """Trains every unfinished seed of `config` in ROOT/seed_<n>, then writes ROOT/seeds.json.

    Returns the summary; a seed stopped by SIGTERM / Ctrl-C raises `cli.Stopped` from
    `train_fn` (it saved; rerun to go on).
    """
    root = os.path.abspath(root)
    for i, seed in enumerate(seeds, 1):
        workdir = seed_workdir(root, seed)
        if os.path.exists(report_path(workdir)):
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
