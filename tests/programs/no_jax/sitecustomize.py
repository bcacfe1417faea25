"""With this directory on PYTHONPATH, Python imports this module at start-up and importing jax,
flax, optax, orbax, TFDS or torch fails from then on: a test runs a command that must work
without them (`serve --export`) in the test environment, which has them all."""

import importlib.abc
import sys

BLOCKED = ("jax", "jaxlib", "flax", "optax", "orbax", "tensorflow_datasets", "torch")


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked in this process (tests/programs/no_jax)", name=name)
        return None


sys.meta_path.insert(0, _Blocked())
