"""Predicts a 300-frame and a 2,300-frame clip (after a warm-up run) and prints the process's
peak memory after each: what tests/test_video.py compares to check that frames are not held.
Its own interpreter, so the peak is this run's alone.

    python -m tests.programs.video_memory RUN_DIR OUT_DIR
"""

import resource
import sys

import numpy as np

from hsnet_jax.inference.video import Model, predict_video
from tests import clips


def main(workdir: str, root: str) -> None:
    model = Model(workdir)
    face = clips.astronaut_face(48)
    rng = np.random.default_rng(0)

    def frame(k):
        picture = clips.canvas(160, 96, k)
        picture[:8] = rng.integers(0, 255, (8, 160, 3))  # noise: every frame costs bytes
        clips.paste(picture, face, 20 + k % 40, 16)
        return picture

    peaks = []
    for n in (300, 300, 2300):  # the first run compiles and warms up; the next two are compared
        path = f"{root}/clip{n}.mp4"
        clips.write(path, (frame(k) for k in range(n)))
        rows = predict_video(model, path, every=100, annotate=f"{root}/annotated{n}.mp4", progress=False)
        assert len(rows) == n // 100, len(rows)
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(*peaks[1:])


if __name__ == "__main__":
    main(*sys.argv[1:3])
