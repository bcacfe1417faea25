"""PyTorch's `ReduceLROnPlateau` (mode "min"), epoch for epoch, as a checkpointable pytree.

The paper trained with `torch.optim.lr_scheduler.ReduceLROnPlateau(factor=0.1, patience=20)`
on the validation loss. optax's `reduce_on_plateau` differs from it (it cuts when the bad-epoch
count reaches `patience`, PyTorch when it exceeds it; it has no `eps` floor), so this module
restates PyTorch's `step`:

    better  = loss < best * (1 - threshold)    (threshold_mode "rel")
              loss < best - threshold          (threshold_mode "abs")
    bad     = 0 if better else bad + 1;  best = loss if better
    in cooldown (counter > 0): counter -= 1, bad = 0
    bad > patience: new = max(lr * factor, min_lr), kept only if lr - new > eps;
                    counter = cooldown, bad = 0

The decision runs on the host once per epoch in Python floats (float64, as PyTorch's), fed
the validation loss rounded to float32 (what a PyTorch loss tensor holds). The rate is not
stored as a float32 but as the number of reductions taken, from which the float64 rate is
recomputed exactly; the device only reads `scale` = rate / base rate, which multiplies Adam's
updates (Adam runs with the base rate).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import ml_collections
import numpy as np





class PlateauState(flax.struct.PyTreeNode):
    """Scalars only, so orbax checkpoints it with the train state and a resume is exact."""

    scale: jax.Array  # float32: rate / base rate, what the train step multiplies updates by
    reductions: jax.Array  # int32: reductions taken so far (the rate is recomputed from it)
    best: jax.Array  # float32: lowest loss seen (inf before the first epoch)
    num_bad_epochs: jax.Array  # int32
    cooldown_counter: jax.Array  # int32


def init_state() -> PlateauState:
    return _state(1.0, 0, np.inf, 0, 0)


def _state(scale: float, reductions: int, best: float, bad: int, cooldown: int) -> PlateauState:
    """Host (numpy) scalars: `replicate` puts them on the devices."""
    f32, i32 = (lambda v: np.asarray(v, np.float32)), (lambda v: np.asarray(v, np.int32))
    return PlateauState(scale=f32(scale), reductions=i32(reductions), best=f32(best),
                        num_bad_epochs=i32(bad), cooldown_counter=i32(cooldown))


def rate(base_lr: float, reductions: int, plateau: ml_collections.ConfigDict) -> float:
    """The learning rate after `reductions` reductions, in float64 as PyTorch computes it."""
    lr = float(base_lr)
    for _ in range(reductions):
        lr = max(lr * plateau.factor, plateau.min_lr)
    return lr


def host_value(a: Any):
    """A replicated (possibly multi-host) scalar as a numpy value."""
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
        a = a.addressable_data(0)
    return np.asarray(a)


def step(state: PlateauState, loss: float, base_lr: float, plateau: ml_collections.ConfigDict) -> PlateauState:
    """One epoch of `ReduceLROnPlateau.step(loss)`; returns the state the next epoch trains with."""
    current = float(np.float32(loss))
    best = float(host_value(state.best))
    bad = int(host_value(state.num_bad_epochs))
    cooldown = int(host_value(state.cooldown_counter))
    reductions = int(host_value(state.reductions))
    if plateau.threshold_mode == "rel":
        better = current < best * (1.0 - plateau.threshold)
    else:
        better = current < best - plateau.threshold
    if better:
        best, bad = current, 0
    else:
        bad += 1
    if cooldown > 0:
        cooldown, bad = cooldown - 1, 0
    if bad > plateau.patience:
        old = rate(base_lr, reductions, plateau)
        if old - max(old * plateau.factor, plateau.min_lr) > plateau.eps:
            reductions += 1
        cooldown, bad = plateau.cooldown, 0
    scale = rate(base_lr, reductions, plateau) / float(base_lr)
    return _state(scale, reductions, best, bad, cooldown)
