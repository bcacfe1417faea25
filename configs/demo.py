r"""HSNet on the generated expression set, sized for a 2-core CPU (what `make demo` runs).

  python -m hsnet_jax.train --config configs/demo.py --workdir workdirs/demo

How and why it differs from the paper's recipe (configs/raf.py):
- 75x75 input (HSNet's smallest; the faces are drawn at 100x100), batch 16, 4 epochs, and a
  reduce-on-plateau patience of 1 epoch: a few minutes of CPU instead of hours of GPU.
- The FGAL head is off (the DIB + linear classifier row of Table 6). From He-initialised
  weights, Adam drives FGAL's three self-gates sigmoid(Dense(1)(psi)) to exactly 0 within a
  few dozen steps on this set even at lr 1e-4 with warm-up, after which the logits and every
  gradient are 0 (loss stuck at ln 7); measured 2026-11-27 and reported to the lead.
- Adam's learning rate is 3e-4: at 0.01 this short run does not settle.
The `synthetic` set is generated on first use (no download).
"""

from hsnet_jax.config import base_config


def get_config():
    c = base_config("synthetic")
    c.image_size = 75
    c.batch_size = 16
    c.num_epochs = 4
    c.model.use_fgal = False
    c.optimizer.learning_rate = 3e-4
    c.plateau.patience = 1
    c.steps_per_dispatch = 1  # on CPU a dispatch costs little and K > 1 multiplies compile time
    c.eval_batch_size = 64
    c.checkpoint_keep = 2
    return c
