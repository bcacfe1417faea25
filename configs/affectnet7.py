r"""HSNet on AffectNet-7 (7 basic expressions; faces cropped from their boxes, 112x112), with the paper's recipe.

  python -m hsnet_jax.train --config configs/affectnet7.py --workdir workdirs/affectnet7

Protocol: the official training list (codes 0-6; contempt, none, uncertain and non-face are
excluded and counted), 10% of it held out for validation (stratified, seeded); the official
validation list (500 per class) is the test split, since AffectNet's test set is not public.
Prepare it first (`python -m hsnet_jax.prepare --dataset affectnet/7 --manual_dir ...`);
at 287,651 training faces the split is 10.8 GB: `data_placement` "auto" streams it from disk
when it does not fit (`stream`). Published test accuracies on this protocol: DAN (Wen et al.,
Biomimetics 2023) 65.69%, POSTER++ (Mao et al., 2023) 67.49%.

Class balance: the training list is ~134k happy against ~4k disgust, and DAN and POSTER train it
with an imbalanced-dataset sampler (each example drawn with probability inverse to its class's
frequency); this config does the same, `class_balance = "sampler"` (the one change from the
paper's recipe; `--config.class_balance=none` trains on the list as it is). Their numbers are
also the best epoch on the test split: `--config.report_test_each_epoch=True` reports that
number beside ours (docs/reproducing.md).
"""

from hsnet_jax.config import base_config


def get_config():
    config = base_config("affectnet/7")
    config.class_balance = "sampler"  # DAN's and POSTER's ImbalancedDatasetSampler
    return config
