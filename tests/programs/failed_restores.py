"""Restores a damaged checkpoint again and again, collecting garbage after each failure, and
prints each failure's one line: what tests/test_checkpoint.py reads to check that a failed
restore leaves nothing behind (leftovers are reported when the garbage collector frees them).
Its own interpreter, so nothing the test session did before is collected here.

    python -m tests.programs.failed_restores RUN_DIR ATTEMPTS
"""

import gc
import glob
import os
import sys

import jax
import numpy as np

from hsnet_jax.runtime import checkpoint

META = dict(epoch=3, num_classes=7, use_dib=True, use_fgal=True, class_names=list("abcdefg"))


def abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


def main(run: str, attempts: int) -> None:
    rng = np.random.default_rng(0)  # random values: constant ones compress into a few bytes
    tree = {f"layer{i}": {"kernel": jax.numpy.asarray(rng.normal(size=(64, 64)), np.float32),
                          "bias": jax.numpy.asarray(rng.normal(size=64), np.float32)} for i in range(100)}
    variables, train = {"params": tree, "batch_stats": {}}, {"mu": tree, "step": jax.numpy.int32(1)}
    manager = checkpoint.open_manager(run, "latest")
    checkpoint.save(manager, 1, variables, dict(META, step=1), train=train)
    checkpoint.wait(manager)
    for path in glob.glob(os.path.join(run, "checkpoints", "latest", "1", "**", "d", "*"), recursive=True):
        os.truncate(path, 64)  # the arrays' data and the databases' trees: orbax's reads fail at once
    for attempt in range(attempts):
        try:
            if attempt % 2:
                checkpoint.restore_variables(run, "latest")
            else:
                checkpoint.restore_train(checkpoint.open_manager(run, "latest", read_only=True), 1,
                                         abstract(variables), abstract(train))
        except checkpoint.DamagedCheckpointError as e:
            print(e, file=sys.stderr)
        gc.collect()  # what a failed restore left behind is reported when it is freed
    gc.collect()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
