r"""HSNet on FERG-DB (7 classes, 6 cartoon characters), with the paper's recipe.

  python -m hsnet_jax.train --config configs/ferg.py --workdir workdirs/ferg

Prepare the dataset first (`python -m hsnet_jax.prepare --dataset ferg_db ...`; the
trainer prints the exact command if it is missing). KTL (the frozen VGGFace2 stem):
  --config.ktl.stem_checkpoint=weights/vggface2_stem  (written by convert/port_stem.py)
"""

from hsnet_jax.config import base_config


def get_config():
    return base_config("ferg_db")
