"""HSNet and the Inception-ResNet-v1 it builds on, in Flax linen (NHWC)."""

from hsnet_jax.models.factory import DTYPES, architecture, create_model, init_variables
from hsnet_jax.models.hsnet import FGAL, RDIB, SDIB, DilatedInceptionBody, HSNet
from hsnet_jax.models.inception_resnet_v1 import (Block8, Block17, Block35, InceptionResnetV1,
                                                  InceptionResnetV1Body, Mixed6a, Mixed7a, Stem)
from hsnet_jax.models.layers import Conv, ConvBN, normalize, upsample_nearest

__all__ = [
    "HSNet", "Stem", "RDIB", "SDIB", "FGAL", "DilatedInceptionBody", "InceptionResnetV1",
    "InceptionResnetV1Body", "Block35", "Block17", "Block8", "Mixed6a", "Mixed7a", "Conv",
    "ConvBN", "normalize", "upsample_nearest", "architecture", "create_model", "init_variables", "DTYPES",
]
