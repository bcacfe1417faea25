"""Datasets on the host: the databases' builders, reading, splits, and the augmentation (see docs/datasets.md).

Import-light: the names below are loaded on first use, so `hsnet_jax.data.augment` (used by the
train step on accelerator hosts) never pulls in tensorflow_datasets or torch.
"""

import importlib

_EXPORTS = {
    "CANONICAL_EXPRESSIONS": "expressions",
    "canonical_mapping": "expressions",
    "default_data_dir": "registry",
    "DATASETS": "registry",
    "load_split": "loading",
    "open_split": "loading",
    "SplitSource": "loading",
    "Split": "loading",
    "prepare_dataset": "preparation",
    "DatasetNotPreparedError": "errors",
    "augment_batch": "augment",
    "preprocess_eval": "augment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
