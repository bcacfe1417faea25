"""Training: the loop (`train_and_evaluate`), the step, the batches and where the training set
lives, the plateau schedule, the per-epoch log, several seeds, the ablation's rows.

`from hsnet_jax.training import train_and_evaluate` loads the loop on first use, so the step
and the sampler can be imported without it (and without TFDS)."""

import importlib

_EXPORTS = {"train_and_evaluate": "loop", "TrainResult": "loop", "load_data": "loop"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
