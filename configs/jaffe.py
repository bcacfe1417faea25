r"""HSNet on JAFFE (213 images of 10 Japanese women, 7 classes; MTCNN crops), with the paper's recipe.

  python -m hsnet_jax.train --config configs/jaffe.py --workdir workdirs/jaffe

Protocol: seeded 80 / 10 / 10 splits, stratified by class; the subject-independent split
(no woman in two splits) is --config.dataset=jaffe/subject_disjoint, and every example keeps
`subject` for leave-one-subject-out folds. Prepare it first
(`python -m hsnet_jax.prepare --dataset jaffe --manual_dir ...`). Published JAFFE figures
use cross-validation protocols that differ from paper to paper, so none is quoted as a target.
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("jaffe")
