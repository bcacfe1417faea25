r"""HSNet on RaFD (8 classes, contempt included; MTCNN face crops), with the paper's recipe.

  python -m hsnet_jax.train --config configs/rafd.py --workdir workdirs/rafd

Prepare the dataset first (`python -m hsnet_jax.prepare --dataset rafd ...`; the
trainer prints the exact command if it is missing). KTL (the frozen VGGFace2 stem):
  --config.ktl.stem_checkpoint=weights/vggface2_stem  (written by convert/port_stem.py)
The subject-disjoint split: --config.dataset=rafd/subject_disjoint
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("rafd")
