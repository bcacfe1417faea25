r"""HSNet on RAF-DB (basic, 7 classes; official train/test, 10% of train for validation), with the paper's recipe.

  python -m hsnet_jax.train --config configs/raf.py --workdir workdirs/raf

Prepare the dataset first (`python -m hsnet_jax.prepare --dataset raf_db ...`; the
trainer prints the exact command if it is missing). KTL (the frozen VGGFace2 stem):
  --config.ktl.stem_checkpoint=weights/vggface2_stem  (written by convert/port_stem.py)
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("raf_db")
