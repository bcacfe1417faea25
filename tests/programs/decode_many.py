"""Decodes the FIRST file, then IMAGE COUNT times, as preparation does (`read_images`, its
thread pool and progress bar) under `cli.run`, for tests/test_hostile_data.py's Ctrl-C test: with
a FIFO as FIRST (which once blocked a decoding thread forever) the first SIGINT must still end it
at once, not after the queued decodes.

Usage: python -m tests.programs.decode_many FIRST IMAGE COUNT

Its own interpreter: the test sends it a real SIGINT.
"""

import sys

from hsnet_jax.data.reading import read_images
from hsnet_jax.runtime import cli


def main() -> None:
    first, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # The test's cue (the progress output writes nothing to a pipe before a tenth is done).
    print("decoding starts", file=sys.stderr, flush=True)
    sys.exit(cli.run(read_images, [first] + [path] * count, 64))


if __name__ == "__main__":
    main()
