r"""HSNet on SFEW 2.0 (7 classes, aligned faces from films, stored 128x128), with the paper's recipe.

  python -m hsnet_jax.train --config configs/sfew.py --workdir workdirs/sfew

Protocol: Train (10% held out for validation, stratified) and Val as the test split, as papers
report SFEW (its test labels were never published). Prepare it first
(`python -m hsnet_jax.prepare --dataset sfew --manual_dir ...`). No published figure is
quoted here as a target.
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("sfew")
