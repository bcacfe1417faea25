"""Runs the benchmark (benchmarks/step.py) at tiny sizes and prints its result as one JSON line,
with the heavy modules (TFDS, TensorFlow, torch) it imported, for
tests/test_benchmark.py::test_benchmark_reports_the_train_step_without_tfds_or_torch.

Usage: python -m tests.programs.benchmark_run

Its own interpreter: which modules got imported is only meaningful in a fresh process (the
test process has imported torch for other tests), and the run compiles and times a whole step.
"""

import json
import sys

from benchmarks import step as benchmark

HEAVY = ("tensorflow_datasets", "tensorflow", "torch")


def main() -> None:
    result = benchmark.run(batch_size=2, image_size=75, source_size=80, dtype="float32", steps=2,
                           steps_per_dispatch=1, warmup=1, eval_batch_size=4,
                           epoch_train_size=4, epoch_val_size=3, num_epochs=10)
    heavy = sorted(m for m in HEAVY if m in sys.modules)
    print(json.dumps(dict(result, heavy_imports=heavy)))


if __name__ == "__main__":
    main(*sys.argv[1:])
