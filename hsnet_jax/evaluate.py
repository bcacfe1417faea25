"""`python -m hsnet_jax.evaluate --workdir DIR [--split test] [--dataset NAME] [--which best]`:
a trained run's report on any split, also of another database, printed as a table and written
with its figures under DIR/eval/ (what is written and how other databases are scored:
`hsnet_jax.inference.evaluation`).
"""

from __future__ import annotations

import argparse
import sys

from hsnet_jax.runtime import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="the run directory of hsnet_jax.train")
    parser.add_argument("--split", default="test", help="train, validation or test (default test)")
    parser.add_argument("--dataset", help="another prepared dataset (cross-database, through the "
                                          "canonical 7 expressions); default: the run's own")
    parser.add_argument("--which", default="best", help="checkpoint: best or latest (default best)")
    parser.add_argument("--data_dir", help="prepared datasets (default: the run's, else "
                                           "$HSNET_DATA_DIR or ~/hsnet_data)")
    args = parser.parse_args(argv)
    from hsnet_jax.inference.evaluation import evaluate_workdir, format_report

    report = evaluate_workdir(args.workdir, args.split, args.dataset, args.which, args.data_dir)
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, preload=("hsnet_jax.inference.evaluation",)))
