r"""`python -m hsnet_jax.ablate --config configs/raf.py [--workdir ROOT] [--config.KEY=VALUE ...]
[--skip_ktl] [--seeds 0,1,2] [--folds K|loso]`: the eight DIB / FGAL / KTL rows of the paper's Table 6, one run
directory each under ROOT (default ./workdirs/ablation_<config name>), and their table in
ROOT/ablation.md. What the rows are and how a rerun completes the table:
`hsnet_jax.training.ablation`.
"""

from __future__ import annotations

import os

from absl import flags
from ml_collections import config_flags

from hsnet_jax.runtime import cli


def default_root(config_file: str) -> str:
    return os.path.join("workdirs", "ablation_" + os.path.splitext(os.path.basename(config_file))[0])


def main(argv: list[str]) -> int:
    import jax

    from hsnet_jax.runtime import distributed
    from hsnet_jax.training import seeds
    from hsnet_jax.training.ablation import run_ablation

    config = flags.FLAGS.config
    root = flags.FLAGS.workdir or default_root(flags.FLAGS["config"].config_filename)
    distributed.initialize_distributed(config)
    from hsnet_jax.training.folds import parse_folds

    seed_list = seeds.parse_seeds(flags.FLAGS.seeds) if flags.FLAGS.seeds else None
    fold_spec = parse_folds(flags.FLAGS.folds) if flags.FLAGS.folds else None
    table = run_ablation(config, root, flags.FLAGS.skip_ktl, seed_list, fold_spec)
    if jax.process_index() == 0:  # the table is the command's output: stdout
        print(table + f"wrote {os.path.join(os.path.abspath(root), 'ablation.md')}")
    return 0


def define_flags() -> None:
    """The CLI flags (defined only when run as a program, like the trainer's)."""
    config_flags.DEFINE_config_file("config", None, "Training config file, e.g. configs/raf.py; "
                                    "each row overrides model.use_dib, model.use_fgal, ktl.stem_checkpoint.",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Root of the row run directories (default ./workdirs/ablation_<config name>).")
    flags.DEFINE_bool("skip_ktl", False, "Run only the four rows without KTL (no stem checkpoint needed).")
    flags.DEFINE_string("seeds", None, "Comma-separated seeds, e.g. 0,1,2: each row trained once per seed "
                        "(ROOT/<row>/seed_<n>), cells read mean ± sample std.")
    flags.DEFINE_string("folds", None, "K or loso: each row run as K subject-independent folds "
                        "(ROOT/<row>/fold_<k>), cells read the mean over folds.")
    flags.mark_flag_as_required("config")


if __name__ == "__main__":
    cli.run_config_command(define_flags, main, preload=("hsnet_jax.training.ablation",))
