r"""HSNet on AffectNet-8 (7 basic expressions + contempt; faces cropped from their boxes), the paper's recipe.

  python -m hsnet_jax.train --config configs/affectnet8.py --workdir workdirs/affectnet8

Protocol: as configs/affectnet7.py with code 7 (contempt) kept: the official training list
(codes 0-7), 10% of it for validation, the official validation list (500 per class) as test.
Prepare it first (`python -m hsnet_jax.prepare --dataset affectnet/8 --manual_dir ...`).
Published test accuracies on this protocol: DAN (Wen et al., Biomimetics 2023) 62.09%,
POSTER++ (Mao et al., 2023) 63.77%. Sampled in class balance as DAN does (`class_balance =
"sampler"`, see configs/affectnet7.py); contempt is the rarest class here (~4k).
"""

from hsnet_jax.config import base_config


def get_config():
    config = base_config("affectnet/8")
    config.class_balance = "sampler"  # DAN's and POSTER's ImbalancedDatasetSampler
    return config
