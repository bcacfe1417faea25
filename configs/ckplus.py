r"""HSNet on CK+ (7 expressions from the 3 peak frames of each labelled sequence; MTCNN crops), with the paper's recipe.

  python -m hsnet_jax.train --config configs/ckplus.py --workdir workdirs/ckplus

Protocol: subject-independent: whole subjects held out (seeded, 80 / 10 / 10), every example
keeps `subject` and `sequence` for the usual 10-fold subject-independent cross-validation.
With neutral (each sequence's first frame, 8 classes): --config.dataset=ckplus/with_neutral.
Prepare it first (`python -m hsnet_jax.prepare --dataset ckplus --manual_dir ...`).
Published CK+ figures use 10-fold cross-validation (one held-out split here is not the same
protocol), so none is quoted as a target.
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("ckplus")
