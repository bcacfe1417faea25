"""The HSNet a training config describes and its initial variables: one factory for train,
evaluate, predict, ablate and the benchmarks, kept beside the model so nothing else writes it again."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from hsnet_jax.config import DTYPES as config_dtypes
from hsnet_jax.models.hsnet import HSNet

DTYPES = {name: jnp.dtype(name) for name in config_dtypes}  # config.dtype -> the compute dtype


def create_model(config: ml_collections.ConfigDict, num_classes: int, bn_axis_name: str | None = None) -> HSNet:
    """The HSNet a config describes (KTL freezes the stem when a stem checkpoint is given); the
    config is checked by `hsnet_jax.config.check_config`."""
    return HSNet(num_classes, use_dib=config.model.use_dib, use_fgal=config.model.use_fgal,
                 fgal_standardize=config.model.get("fgal_standardize", True),  # runs saved before the key
                 freeze_stem=bool(config.ktl.stem_checkpoint), dtype=DTYPES[config.dtype],
                 bn_axis_name=bn_axis_name)


def init_variables(model, image_size: int, seed: int) -> dict:
    """The model's initial {"params", "batch_stats"} for `seed`, from one jitted `init` (the
    initialisers run compiled: seconds instead of a minute of eager ops at 224 px)."""
    shape = (1, image_size, image_size, 3)
    return jax.jit(lambda: model.init(jax.random.key(seed), jnp.zeros(shape), train=False))()


def architecture(model: HSNet) -> dict:
    """What fixes the shapes of a model's variables: recorded with every checkpoint and
    compared when one is restored (`hsnet_jax.runtime.checkpoint.ARCHITECTURE_KEYS`)."""
    return dict(num_classes=model.num_classes, use_dib=model.use_dib, use_fgal=model.use_fgal,
                fgal_standardize=model.fgal_standardize)
