r"""HSNet on FER2013 (7 classes, 48x48 grey faces upsampled to the paper's 224 input), with the paper's recipe.

  python -m hsnet_jax.train --config configs/fer2013.py --workdir workdirs/fer2013

Protocol: the challenge's own splits: Training (28,709) to train, PublicTest (3,589) to
validate, PrivateTest (3,589) to test. Prepare it first
(`python -m hsnet_jax.prepare --dataset fer2013 --manual_dir ...`). Published: a single
VGG network at 73.28% PrivateTest accuracy (Khaireddin and Chen, arXiv:2105.03588, 2021).
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("fer2013")
