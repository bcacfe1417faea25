"""`python -m hsnet_jax.predict --workdir DIR [--detect_face] [--json] [--annotate OUT [--overwrite]] IMAGE...`:
the expression on each photo (each face of it with `--detect_face`), with the class
probabilities, as a table or JSON; with `--video CLIP...` every face of every frame, tracked
(`hsnet_jax.inference.video`). How each image is read, cropped and predicted:
`hsnet_jax.inference.prediction`. An unreadable file or, with `--detect_face`, a photo without
a face gets its own `error:` line; the other images are still predicted and the exit status is 1.
Rows (or JSON elements) are printed as each chunk of photos finishes.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from hsnet_jax.errors import HSNetError
from hsnet_jax.faces.tracking import REDETECT
from hsnet_jax.runtime import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--workdir", required=True, help="the run directory of hsnet_jax.train")
    parser.add_argument("--detect_face", action="store_true",
                        help="predict every face MTCNN finds (largest first) instead of the whole picture")
    parser.add_argument("--largest_face", action="store_true",
                        help="with --detect_face: only the largest face, one answer per file")
    parser.add_argument("--max_side", type=int, default=None, metavar="PIXELS",
                        help="with --detect_face: detect on the photo shrunk to this longer side "
                             "(faster; default: full resolution, finds the smallest faces)")
    parser.add_argument("--annotate", metavar="DIR",
                        help="write a copy of each photo with every face boxed and labelled into DIR "
                             "(a folder holding no input; existing names are refused)")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --annotate: replace files of the same names in DIR")
    parser.add_argument("--max_pixels", type=int, default=None, metavar="N",
                        help="refuse images whose header declares more pixels, before decoding them "
                             "(default 50000000: hsnet_jax.data.reading.MAX_PIXELS)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--which", default="best", help="checkpoint: best or latest (default best)")
    parser.add_argument("--video", nargs="+", action="extend", metavar="CLIP",
                        help="videos: every face of every frame tracked (--annotate: the labelled copy, a file "
                             "or, for several videos, a folder)")
    parser.add_argument("--output", metavar="TABLE",
                        help="with --video: the table, .csv or .jsonl (default: CSV on stdout)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="with --video: every Nth frame")
    parser.add_argument("--smooth", type=float, metavar="SECONDS",
                        help="with --video: also each track's probabilities averaged over the last SECONDS")
    parser.add_argument("--redetect", type=int, default=REDETECT, metavar="N",
                        help="with --video: detect faces on the whole frame every Nth processed frame and, in "
                             f"between, re-find each tracked face near its last box (default {REDETECT}; 1: "
                             "every frame, as photos)")
    args = parser.parse_args(argv)
    if bool(args.video) == bool(args.images):
        parser.error("give either IMAGE files or --video CLIP")
    if args.video:
        from hsnet_jax.inference import video

        return _report(video.predict_videos(args.workdir, args.video, args.output, args.annotate, args.every,
                                            args.smooth, args.which, args.max_side, redetect=args.redetect))
    if (args.largest_face or args.max_side) and not args.detect_face:
        raise HSNetError("--largest_face and --max_side need --detect_face")
    if args.overwrite and not args.annotate:
        raise HSNetError("--overwrite needs --annotate")
    if args.max_side is not None and args.max_side < 20:
        raise HSNetError(f"--max_side {args.max_side}: must be at least 20 (MTCNN's smallest face)")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise HSNetError(f"--max_pixels {args.max_pixels}: must be positive")
    from hsnet_jax.faces.answers import table_lines
    from hsnet_jax.inference.prediction import predict_stream

    failed = 0

    def streamed():  # errors on stderr as each result comes
        nonlocal failed
        for r in predict_stream(args.workdir, args.images, args.detect_face, args.which, args.largest_face,
                                args.max_side, args.annotate, args.overwrite, args.max_pixels):
            if "error" in r:
                failed += 1
                print(f"error: {r['error']}", file=sys.stderr, flush=True)
            yield r

    if args.json:  # what json.dumps(results, indent=2) gives, an element at a time
        for n, r in enumerate(streamed()):
            print(("[\n" if n == 0 else ",\n") + textwrap.indent(json.dumps(r, indent=2, allow_nan=False), "  "),
                  end="", flush=True)
        print("\n]")
    else:
        for line in table_lines(streamed(), max(map(len, args.images))):
            print(line, flush=True)
    return 1 if failed else 0


def _report(errors: list[str]) -> int:
    """One `error:` line per failed video; the exit status."""
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, preload=("hsnet_jax.inference.prediction",)))
