r"""HSNet on KDEF (7 classes; MTCNN face crops), with the paper's recipe.

  python -m hsnet_jax.train --config configs/kdef.py --workdir workdirs/kdef

Prepare the dataset first (`python -m hsnet_jax.prepare --dataset kdef ...`; the
trainer prints the exact command if it is missing). KTL (the frozen VGGFace2 stem):
  --config.ktl.stem_checkpoint=weights/vggface2_stem  (written by convert/port_stem.py)
The subject-disjoint split: --config.dataset=kdef/subject_disjoint
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("kdef")
