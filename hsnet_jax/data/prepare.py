"""`python -m hsnet_jax.data.prepare --dataset NAME`: builds a dataset once, prints its table.

Licensed databases are read from `--manual_dir` (default `DATA_DIR/manual/NAME`, NAME without
config); the prepared `array_record` files go to `--data_dir` (default `$HSNET_DATA_DIR` or
`~/hsnet_data`). Preparing an already prepared dataset only prints its table.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from hsnet_jax import cli
from hsnet_jax.data.builder import ManualBuilder, one_line
from hsnet_jax.data.errors import LayoutError
from hsnet_jax.data.registry import default_data_dir, get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.runtime.progress import is_terminal

# The file lists a preparation records in the dataset's metadata -> their line in the summary.
NOTES = {
    "skipped_corrupt": "skipped (undecodable)",
    "skipped_unparseable": "skipped (file name outside the naming scheme)",
    "ignored": "ignored (hidden, __MACOSX/ and ._ sidecar entries)",
    "no_face": "no face detected (centre crop kept)",
}


def prepare_dataset(name: str, data_dir: str | None = None, manual_dir: str | None = None,
                    skip_corrupt: bool = False, skip_unparseable: bool = False) -> dict[str, Any]:
    """Prepares `name` (e.g. "raf_db", "rafd/subject_disjoint") and returns its summary.

    Summary: name, data_dir, class_names, class_counts {split: [count per class]},
    skipped_corrupt, skipped_unparseable, ignored and no_face (relative file names; see
    docs/datasets.md).
    """
    import tensorflow_datasets as tfds  # the builder modules import it anyway

    data_dir = data_dir or default_data_dir()
    builder = get_builder(name, data_dir, skip_corrupt=skip_corrupt, skip_unparseable=skip_unparseable)
    # TFDS's own bars (generating, shuffling, writing) on a terminal only: in a log file they are
    # carriage-return floods; our decoding bar (`Progress`) reports there instead.
    tfds.display_progress_bar(is_terminal(sys.stderr))
    download_config = None
    if isinstance(builder, ManualBuilder):
        manual_dir = os.path.abspath(manual_dir or os.path.join(data_dir, "manual", name.split("/")[0]))
        if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
            raise LayoutError(
                f"manual download directory {manual_dir} is missing or empty. "
                f"{one_line(builder.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=download_config)
    metadata = builder.info.metadata or {}
    return {
        "name": name,
        "data_dir": builder.data_dir,
        "class_names": list(builder.info.features["label"].names),
        "class_counts": dict(metadata.get("class_counts", {})),
        **{key: list(metadata.get(key, [])) for key in NOTES},
    }


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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True,
                        help="synthetic, raf_db, rafd, kdef, ferg_db or image_folder (optionally NAME/CONFIG)")
    parser.add_argument("--manual_dir", help="where the downloaded database is unpacked")
    parser.add_argument("--data_dir", help=f"where prepared datasets go (default {default_data_dir()})")
    parser.add_argument("--skip_corrupt", action="store_true",
                        help="skip undecodable images (they are counted) instead of stopping")
    parser.add_argument("--skip_unparseable", action="store_true",
                        help="skip files named outside the database's naming scheme (they are counted)")
    args = parser.parse_args(argv)
    try:
        summary = prepare_dataset(args.dataset, args.data_dir, args.manual_dir, args.skip_corrupt,
                                  args.skip_unparseable)
    except (HSNetError, OSError) as e:  # OSError: an unwritable or clashing --data_dir, a full disk
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
