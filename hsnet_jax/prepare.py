"""`python -m hsnet_jax.prepare --dataset NAME`: builds a dataset once, prints its table.

Licensed databases are read from `--manual_dir` (default `DATA_DIR/manual/NAME`, NAME without
config); the prepared `array_record` files go to `--data_dir` (default `$HSNET_DATA_DIR` or
`~/hsnet_data`). Preparing an already prepared dataset only prints its table. The table ends
with each split's fingerprint (data/fingerprint.py); `--fingerprint_only` prints those of the
download without preparing anything.
"""

from __future__ import annotations

import argparse
import sys

from hsnet_jax.data.registry import DATASETS, default_data_dir
from hsnet_jax.runtime import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True,
                        help=f"{', '.join(DATASETS)} (optionally NAME/CONFIG)")
    parser.add_argument("--manual_dir", help="where the downloaded database is unpacked")
    parser.add_argument("--data_dir", help=f"where prepared datasets go (default {default_data_dir()})")
    parser.add_argument("--skip_corrupt", action="store_true",
                        help="skip undecodable images (they are counted) instead of stopping")
    parser.add_argument("--skip_unparseable", action="store_true",
                        help="skip files named outside the database's naming scheme (they are counted)")
    parser.add_argument("--fingerprint_only", action="store_true",
                        help="print each split's fingerprint of the download; prepare nothing")
    args = parser.parse_args(argv)
    from hsnet_jax.data import preparation  # after the Ctrl-C handler

    if args.fingerprint_only:
        fingerprints = preparation.fingerprint_download(args.dataset, args.data_dir, args.manual_dir,
                                                        args.skip_unparseable)
        print("\n".join(preparation.format_fingerprints(fingerprints)))
        return 0
    summary = preparation.prepare_dataset(args.dataset, args.data_dir, args.manual_dir, args.skip_corrupt,
                                          args.skip_unparseable)
    print(preparation.format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
