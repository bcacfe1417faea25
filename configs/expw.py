r"""HSNet on ExpW (7 classes; every labelled face cropped from its box, 112x112), with the paper's recipe.

  python -m hsnet_jax.train --config configs/expw.py --workdir workdirs/expw

Protocol: ExpW has no official split; photos are held out seeded (80 / 10 / 10), all faces of
a photo in one split. Prepare it first
(`python -m hsnet_jax.prepare --dataset expw --manual_dir ...`). Papers split ExpW their
own ways, so no published figure is quoted as a target.
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("expw")
