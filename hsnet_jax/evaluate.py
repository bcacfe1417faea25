"""`python -m hsnet_jax.evaluate --workdir DIR`: a trained run's report on any split, also of
another database.

Writes WORKDIR/eval/<name>_metrics.json (the `hsnet_jax.inference.metrics` report plus what was
evaluated), WORKDIR/eval/<name>_confusion_matrix.png (Fig. 6), <name>_examples.png (Fig. 5:
the first 4 faces of each true class, titled with the recognised expression and its
probability, green right, red wrong) and, for a model with FGAL, <name>_gates.png (the mean
of FGAL's three gates per true class, also in the JSON as `gates`), where <name> is the split
("test"), prefixed by the dataset when it is not the run's own ("kdef_test") and suffixed
"_latest" for the latest rather than the best checkpoint ("test_latest").

Across databases both label spaces go through the canonical 7 expressions
(`hsnet_jax.data.canonical_mapping`): a sample whose true class has no canonical counterpart
(RaFD's contempt) cannot be scored and is left out, counted in `excluded`; a prediction of a
model class without a counterpart (a RaFD model saying contempt) is wrong, and such classes
appear as extra columns of the confusion matrix.
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
