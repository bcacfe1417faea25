"""Dataset names -> builder classes (imported on demand: those that crop faces pull in JAX)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os

from hsnet_jax.data.errors import UnknownDatasetError
from hsnet_jax.runtime import logs

DATASETS = {
    "synthetic": "hsnet_jax.data.synthetic:Synthetic",
    "raf_db": "hsnet_jax.data.raf_db:RafDb",
    "rafd": "hsnet_jax.data.rafd:Rafd",
    "kdef": "hsnet_jax.data.kdef:Kdef",
    "ferg_db": "hsnet_jax.data.ferg_db:FergDb",
    "affectnet": "hsnet_jax.data.affectnet:Affectnet",
    "fer2013": "hsnet_jax.data.fer2013:Fer2013",
    "ferplus": "hsnet_jax.data.ferplus:Ferplus",
    "ckplus": "hsnet_jax.data.ckplus:Ckplus",
    "jaffe": "hsnet_jax.data.jaffe:Jaffe",
    "sfew": "hsnet_jax.data.sfew:Sfew",
    "expw": "hsnet_jax.data.expw:Expw",
    "image_folder": "hsnet_jax.data.image_folder:ImageFolder",
}


def _not_variant_folder_warning(record: logging.LogRecord) -> bool:
    """TFDS warns "Variant folder ... has no dataset_info.json" about an unprepared dataset;
    `load_split` says the same in its one-line error with the command that prepares it."""
    return not str(record.msg).startswith("Variant folder")


def no_variant_folder_warning() -> contextlib.AbstractContextManager[None]:
    """The filter above on absl's logger while asking a builder whether it is prepared, and only then."""
    return logs.dropped(_not_variant_folder_warning)


def default_data_dir() -> str:
    """Where prepared datasets live: `$HSNET_DATA_DIR`, else `~/hsnet_data`."""
    return os.environ.get("HSNET_DATA_DIR") or os.path.join(os.path.expanduser("~"), "hsnet_data")


def get_builder(name: str, data_dir: str | None = None, **kwargs):
    """`name` or `name/config` -> the builder writing to / reading from `data_dir`."""
    dataset, _, config = name.partition("/")
    if dataset not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))}")
    module, cls_name = DATASETS[dataset].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    configs = [c.name for c in cls.BUILDER_CONFIGS]
    if config and config not in configs:
        raise UnknownDatasetError(
            f"dataset {dataset!r} has no config {config!r}; configs: {', '.join(configs) or 'none'}")
    if configs:
        kwargs["config"] = config or configs[0]
    return cls(data_dir=data_dir or default_data_dir(), file_format="array_record", **kwargs)
