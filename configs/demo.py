r"""HSNet on the generated expression set, sized for a 2-core CPU (what `make demo` runs).

  python -m hsnet_jax.train --config configs/demo.py --workdir workdirs/demo

Differs from the paper's recipe so that a laptop-class CPU reaches >= 90% test accuracy in a
few minutes: 75x75 input (HSNet's smallest; the faces are drawn at 100x100), batch 16, a
lower learning rate (Adam at 0.01 with so few steps does not settle), and few epochs with a
short plateau patience. The `synthetic` set is generated on first use (no download).
"""

from hsnet_jax.config import base_config


def get_config():
    c = base_config("synthetic")
    c.image_size = 75
    c.batch_size = 16
    c.num_epochs = 4
    c.optimizer.learning_rate = 1e-3
    c.plateau.patience = 1
    c.steps_per_dispatch = 1  # on CPU a dispatch costs little and K > 1 multiplies compile time
    c.eval_batch_size = 64
    c.checkpoint_keep = 2
    return c
