r"""HSNet on the generated expression set, sized for a 2-core CPU (what `make demo` runs).

  python -m hsnet_jax.train --config configs/demo.py --workdir workdirs/demo

How and why it differs from the paper's recipe (configs/raf.py):
- 75x75 input (HSNet's smallest; the faces are drawn at 100x100), batch 16, 3 epochs, and a
  ReduceLROnPlateau patience of 1 epoch: a few minutes of CPU instead of hours of GPU.
  Patience has PyTorch's meaning since issue 13: the rate falls after 2 bad epochs in a row
  (optax's patience 1, used before, cut after every bad one; PyTorch's 0 would do that).
- Adam's learning rate is 3e-4. At the paper's 0.01, without KTL, the loss of this short run
  swings between 6 and 9 for its first 120 steps (75 px, batch 16, measured 2026-11-27); the
  paper's 500-epoch schedule has time to lower the rate, three epochs do not.
The `synthetic` set is generated on first use (no download).
"""

from hsnet_jax.config import base_config


def get_config():
    c = base_config("synthetic")
    c.image_size = 75
    c.batch_size = 16
    c.num_epochs = 3
    c.optimizer.learning_rate = 3e-4
    c.plateau.patience = 1
    c.steps_per_dispatch = 1  # on CPU a dispatch costs little and K > 1 multiplies compile time
    c.eval_batch_size = 64
    c.checkpoint_keep = 2
    return c
