"""Preparing a dataset once (what `python -m hsnet_jax.prepare --dataset NAME` runs), and its table.

Licensed databases are read from `--manual_dir` (default `DATA_DIR/manual/NAME`, NAME without
config); the prepared `array_record` files go to `--data_dir` (default `$HSNET_DATA_DIR` or
`~/hsnet_data`). Preparing an already prepared dataset only prints its table. The table ends
with each split's fingerprint (data/fingerprint.py); `--fingerprint_only` prints those of the
download without preparing anything.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hsnet_jax.data.builder import ManualBuilder, one_line
from hsnet_jax.data.errors import LayoutError
from hsnet_jax.data.registry import default_data_dir, get_builder
from hsnet_jax.runtime.progress import is_terminal

# The file lists a preparation records in the dataset's metadata -> their line in the summary.
NOTES = {
    "skipped_corrupt": "skipped (undecodable)",
    "skipped_unparseable": "skipped (file name outside the naming scheme)",
    "ignored": "ignored (hidden, __MACOSX/ and ._ sidecar entries)",
    "no_face": "no face detected (centre crop kept)",
}


def _manual_dir(builder: ManualBuilder, name: str, data_dir: str, manual_dir: str | None) -> str:
    """The download's folder (default DATA_DIR/manual/NAME); a LayoutError when missing or empty."""
    manual_dir = os.path.abspath(manual_dir or os.path.join(data_dir, "manual", name.split("/")[0]))
    if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
        raise LayoutError(
            f"manual download directory {manual_dir} is missing or empty. "
            f"{one_line(builder.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
    return manual_dir


def prepare_dataset(name: str, data_dir: str | None = None, manual_dir: str | None = None,
                    skip_corrupt: bool = False, skip_unparseable: bool = False) -> dict[str, Any]:
    """Prepares `name` (e.g. "raf_db", "rafd/subject_disjoint") and returns its summary.

    Summary: name, data_dir, class_names, class_counts {split: [count per class]},
    skipped_corrupt, skipped_unparseable, ignored and no_face (relative file names; see
    docs/datasets.md), excluded {why: count}, fingerprints {split: SHA-256 hex}.
    """
    import tensorflow_datasets as tfds  # the builder modules import it anyway

    data_dir = data_dir or default_data_dir()
    builder = get_builder(name, data_dir, skip_corrupt=skip_corrupt, skip_unparseable=skip_unparseable)
    # TFDS's own bars (generating, shuffling, writing) on a terminal only: in a log file they are
    # carriage-return floods; our decoding bar (`Progress`) reports there instead.
    tfds.display_progress_bar(is_terminal(sys.stderr))
    download_config = None
    if isinstance(builder, ManualBuilder):
        download_config = tfds.download.DownloadConfig(manual_dir=_manual_dir(builder, name, data_dir, manual_dir))
    builder.download_and_prepare(download_config=download_config)
    metadata = builder.info.metadata or {}
    return {
        "name": name,
        "data_dir": builder.data_dir,
        "class_names": list(builder.info.features["label"].names),
        "class_counts": dict(metadata.get("class_counts", {})),
        **{key: list(metadata.get(key, [])) for key in NOTES},
        "excluded": dict(metadata.get("excluded", {})),
        "fingerprints": dict(metadata.get("fingerprints", {})),
    }


def fingerprint_download(name: str, data_dir: str | None = None, manual_dir: str | None = None,
                         skip_unparseable: bool = False) -> dict[str, str]:
    """Split -> fingerprint of the download of `name`, without decoding or writing anything."""
    data_dir = data_dir or default_data_dir()
    builder = get_builder(name, data_dir, skip_unparseable=skip_unparseable)
    if not isinstance(builder, ManualBuilder):
        raise LayoutError(f"dataset {name!r} has no download to fingerprint (it is generated)")
    return builder.fingerprints(_manual_dir(builder, name, data_dir, manual_dir))


def format_fingerprints(fingerprints: dict[str, str]) -> list[str]:
    return [f"fingerprint {split}: {value}" for split, value in fingerprints.items()]


def format_summary(summary: dict[str, Any]) -> str:
    """The images-per-split-and-class table, plus the skipped / no-face counts."""
    counts = summary["class_counts"]
    splits = [s for s in ("train", "validation", "test") if s in counts]
    width = max(len(c) for c in summary["class_names"] + ["class", "total"])
    lines = [f"{summary['name']} in {summary['data_dir']}",
             "class".ljust(width) + "".join(f"{s:>12}" for s in splits)]
    for i, name in enumerate(summary["class_names"]):
        lines.append(name.ljust(width) + "".join(f"{counts[s][i]:>12}" for s in splits))
    lines.append("total".ljust(width) + "".join(f"{sum(counts[s]):>12}" for s in splits))
    # The undecodable count always shows (it answers "was anything dropped?"), the others when not 0.
    lines += [f"{text}: {len(summary[key])}" for key, text in NOTES.items() if key == "skipped_corrupt" or summary[key]]
    lines += [f"excluded ({why}): {count}" for why, count in summary["excluded"].items()]
    return "\n".join(lines + format_fingerprints(summary["fingerprints"]))
