"""Face detection on the Flax P/R/O-Nets, no torch: MTCNN's procedure
(`hsnet_jax.faces.mtcnn_procedure`, numpy, facenet-pytorch's `detect_face` step for step, so
boxes, probabilities and landmarks match it: tests/test_detect.py, docs/datasets.md) handed the
three networks under `jax.jit`.

What runs where: the networks under `jax.jit` on the default device; the pyramid's area resize,
box arithmetic and NMS in float32 numpy on the host. Compiled shapes are bucketed: a pyramid
level runs zero-padded to `level_bucket` sides (P-Net ignores the padding: `valid`), so photos
of similar sizes share compiled programs, and R-Net/O-Net see candidate counts padded to
`bucket(n, SMALLEST_BATCH)`. Each photo is detected alone (batch 1 for P-Net), so its faces never depend on
the other photos of a batch.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from hsnet_jax.faces.mtcnn_procedure import (FACTOR, MIN_FACE_SIZE, THRESHOLDS, Faces,  # noqa: F401
                                             Networks, Procedure)
from hsnet_jax.models.mtcnn import ONet, PNet, RNet, load_variables

_pnet = jax.jit(lambda variables, level, valid: PNet().apply(variables, level, valid))
_rnet = jax.jit(lambda variables, crops: RNet().apply(variables, crops))
_onet = jax.jit(lambda variables, crops: ONet().apply(variables, crops))


# R-Net and O-Net run at least this many crops: a video frame between whole-frame searches
# hands O-Net one or two per face, and O-Net on 16 padded crops costs 8 ms on a 2-core CPU.
SMALLEST_BATCH = 4


def level_bucket(n: int) -> int:
    """The padded side a pyramid level of side n runs at: multiples of 16, 32 above 256, 64
    above 512 (at most 6-12% more pixels), so
    photos of similar sizes reuse each other's compiled P-Net programs."""
    step = 16 if n <= 256 else 32 if n <= 512 else 64
    return -(-n // step) * step


def bucket(n: int, smallest: int = 1) -> int:
    """The batch size a batch of n is padded to: the smallest power of two or 1.5 x power of
    two >= max(n, smallest) (at most a third wasted, few compiled shapes)."""
    n = max(n, smallest)
    power = 1 << max(0, n - 1).bit_length()
    return power * 3 // 4 if power >= 4 and power * 3 // 4 >= n else power


def _pad_batch(x: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)]) if size > len(x) else x


def flax_networks(variables: dict | None = None) -> Networks:
    """The Flax P/R/O-Nets (the shipped weights unless `variables`) as the procedure's callables,
    padded to the bucketed shapes above; outputs stay on the device until the procedure reads them."""
    variables = load_variables() if variables is None else variables

    def pnet(level: np.ndarray):
        _, h, w, _ = level.shape
        padded = np.zeros((1, level_bucket(h), level_bucket(w), 3), np.float32)
        padded[:, :h, :w] = level
        return _pnet(variables["pnet"], padded, np.array([h, w], np.int32))

    def rnet(crops: np.ndarray):
        return _rnet(variables["rnet"], _pad_batch(crops, bucket(len(crops), SMALLEST_BATCH)))

    def onet(crops: np.ndarray):
        return _onet(variables["onet"], _pad_batch(crops, bucket(len(crops), SMALLEST_BATCH)))

    return Networks(pnet, rnet, onet)


class Detector(Procedure):
    """MTCNN with facenet-pytorch's defaults on the Flax networks; `detect` takes RGB photos."""

    def __init__(self, min_face_size: int = MIN_FACE_SIZE, thresholds: Sequence[float] = THRESHOLDS,
                 factor: float = FACTOR):
        super().__init__(flax_networks(), min_face_size, thresholds, factor)

    def warm(self, most: int = 32) -> None:
        """Compiles R-Net and O-Net for every padded candidate count up to `most` (`bucket`: 4,
        6, 8, 12, 16, 24, 32), so that a server's first faces do not wait for it; P-Net compiles
        per photo size on first use."""
        for n in sorted({bucket(k, SMALLEST_BATCH) for k in range(1, most + 1)}):
            self.networks.rnet(np.zeros((n, 24, 24, 3), np.float32))
            self.networks.onet(np.zeros((n, 48, 48, 3), np.float32))
