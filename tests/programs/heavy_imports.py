"""Imports the modules named on the command line and prints, as one JSON list, which heavy
modules (TFDS, TensorFlow, torch) that pulled in: the tests that keep the training step, the
augmentation and the pretrained-weight loader free of them (test_train_step.py,
test_data_augment.py, test_pretrained.py).

Usage: python -m tests.programs.heavy_imports MODULE [MODULE...]

Its own interpreter: only a fresh process says what importing a module pulls in (the test
process has imported torch and more for other tests).
"""

import importlib
import json
import sys

HEAVY = ("tensorflow_datasets", "tensorflow", "torch")


def main(*modules: str) -> None:
    if not modules:
        sys.exit("usage: python -m tests.programs.heavy_imports MODULE [MODULE...]")
    for name in modules:
        importlib.import_module(name)
    print(json.dumps([m for m in HEAVY if m in sys.modules]))


if __name__ == "__main__":
    main(*sys.argv[1:])
