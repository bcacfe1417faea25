r"""HSNet on FERPlus (8 classes: FER2013's faces relabelled by 10 annotators each), with the paper's recipe.

  python -m hsnet_jax.train --config configs/ferplus.py --workdir workdirs/ferplus

Protocol: FER2013's splits with FERPlus's labels by Microsoft's reference rules; the default
config labels by majority (faces whose majority is unknown or not-a-face are dropped and
counted). The soft-label modes are the datasets ferplus/probability, ferplus/crossentropy and
ferplus/multi_target: their examples keep the vote distribution and the run trains on it as
Microsoft's reference does (hsnet_jax.training.targets): --config.dataset=ferplus/crossentropy.
Validation and test are labelled by majority in every mode. Prepare it first
(`python -m hsnet_jax.prepare --dataset ferplus --manual_dir ...`).
Published: SCN (Wang et al., CVPR 2020) 89.35% test accuracy.
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("ferplus")
