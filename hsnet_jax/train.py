r"""Trains HSNet with the paper's recipe on any number of devices and hosts, resumably.

  python -m hsnet_jax.train --config configs/raf.py [--workdir DIR] [--config.KEY=VALUE ...]
                            [--seeds 0,1,2] [--folds K|loso] [--profile_steps A:B]

The default workdir is ./workdirs/<config file name> (e.g. workdirs/raf). Re-running the
same command on a workdir that holds a checkpoint resumes it; the run then ends with the
same weights as one that was never interrupted. SIGTERM or Ctrl-C save at the next dispatch
boundary and exit with status 143 / 130. A second trainer on the same workdir stops at once
(`hsnet_jax.runtime.runlock`). `--folds` trains a subject-independent fold protocol
(`hsnet_jax.training.folds`). What a run leaves is described in docs/training.md ("## Outputs
of a run"); the loop itself is `hsnet_jax.training.train_and_evaluate`.
"""

from __future__ import annotations

import os

from absl import flags
from ml_collections import config_flags

from hsnet_jax.errors import HSNetError
from hsnet_jax.runtime import cli

OUTPUTS = """run directory {workdir}:
  config.json            the resolved config
  metrics.jsonl          one line per epoch (losses, accuracies, lr scale, images/s)
  training_curves.png    loss and accuracy per epoch
  tensorboard/           TensorBoard events (tensorboard --logdir ...)
  checkpoints/latest|best  orbax checkpoints (restore: hsnet_jax.runtime.checkpoint.restore_variables)
  eval/test_metrics.json, eval/test_confusion_matrix.png  the best checkpoint on the test split
  eval/test_examples.png, eval/test_gates.png  Fig. 5 faces; FGAL's gates per class (with FGAL)"""


def default_workdir(config_file: str) -> str:
    return os.path.join("workdirs", os.path.splitext(os.path.basename(config_file))[0])


def parse_profile_steps(text: str | None) -> tuple[int, int] | None:
    """"A:B" -> (A, B), the global steps a profiler trace covers; one-line errors otherwise."""
    if not text:
        return None
    try:
        first, last = (int(part) for part in text.split(":"))
    except ValueError:
        raise HSNetError(f"--profile_steps must be A:B with whole numbers, got {text!r}") from None
    if not 0 <= first < last:
        raise HSNetError(f"--profile_steps A:B needs 0 <= A < B, got {text!r}")
    return first, last


def main(argv: list[str]) -> int:
    from hsnet_jax.runtime import distributed
    from hsnet_jax.training import folds, seeds, train_and_evaluate

    config = flags.FLAGS.config
    workdir = flags.FLAGS.workdir or default_workdir(flags.FLAGS["config"].config_filename)
    profile_steps = parse_profile_steps(flags.FLAGS.profile_steps)
    distributed.initialize_distributed(config)
    seed_list = seeds.parse_seeds(flags.FLAGS.seeds) if flags.FLAGS.seeds else [config.seed]
    train_fn = folds.trainer(folds.parse_folds(flags.FLAGS.folds) if flags.FLAGS.folds else None)
    if len(seed_list) > 1:  # a signal raises cli.Stopped from the seed in training
        summary = seeds.run_seeds(config, workdir, seed_list, train_fn)
        cli.say(seeds.summary_line(summary) + f"\nwrote {os.path.join(os.path.abspath(workdir), 'seeds.json')}")
        return 0
    config.seed = seed_list[0]
    if flags.FLAGS.folds:
        summary = train_fn(config, workdir)
        cli.say(folds.summary_line(summary) + f"\nwrote {os.path.join(os.path.abspath(workdir), 'folds.json')}")
        return 0
    report = train_and_evaluate(config, workdir, profile_steps=profile_steps).report
    cli.say(report_line(report) + "\n" + OUTPUTS.format(workdir=os.path.abspath(workdir)))
    return 0


def report_line(report: dict) -> str:
    """The test numbers of the validation-selected checkpoint and, when the run scored the test
    split every epoch, the best epoch on test beside them, labelled."""
    line = f"test accuracy {report['accuracy']:.4f}, mean accuracy {report['mean_accuracy']:.4f}"
    on_test = report.get("best_epoch_on_test")
    if not on_test:
        return line
    return (f"{line} (validation-selected); best epoch on test (as DAN/POSTER report): accuracy "
            f"{on_test['accuracy']:.4f}, mean accuracy {on_test['mean_accuracy']:.4f} (epoch {on_test['epoch'] + 1})")


def define_flags() -> None:
    config_flags.DEFINE_config_file("config", None, "Training config file, e.g. configs/raf.py.",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Run directory (default ./workdirs/<config name>).")
    flags.DEFINE_string("seeds", None, "Comma-separated seeds, e.g. 0,1,2: one run per seed in "
                        "WORKDIR/seed_<n> and their mean ± sample std in WORKDIR/seeds.json "
                        "(one seed: config.seed, today's layout).")
    flags.DEFINE_string("folds", None, "K or loso: K subject-independent folds (loso: one per subject) of "
                        "a database with subjects, one run per fold in WORKDIR/fold_<k> and their mean ± "
                        "sample std and pooled confusion matrix in WORKDIR/folds.json.")
    flags.DEFINE_string("profile_steps", None, "A:B: a jax.profiler trace of global steps A to B "
                        "in WORKDIR/profile (TensorBoard's profile plugin or Perfetto reads it).")
    flags.mark_flag_as_required("config")


if __name__ == "__main__":
    cli.run_config_command(define_flags, main, preload=("hsnet_jax.training",))
