"""The HSNet a training config describes: one factory for train, evaluate, predict, ablate and
benchmark, kept beside the model so the commands never import each other for it."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from hsnet_jax.errors import HSNetError
from hsnet_jax.models.hsnet import HSNet

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def create_model(config: ml_collections.ConfigDict, num_classes: int, bn_axis_name: str | None = None) -> HSNet:
    """The HSNet a config describes (KTL freezes the stem when a stem checkpoint is given)."""
    if config.dtype not in DTYPES:
        raise HSNetError(f"dtype must be one of {', '.join(DTYPES)}, got {config.dtype!r}")
    return HSNet(num_classes, use_dib=config.model.use_dib, use_fgal=config.model.use_fgal,
                 fgal_standardize=config.model.get("fgal_standardize", True),  # runs saved before the key
                 freeze_stem=bool(config.ktl.stem_checkpoint), dtype=DTYPES[config.dtype],
                 bn_axis_name=bn_axis_name)
