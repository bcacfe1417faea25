"""Face detection: facenet-pytorch's `MTCNN.detect` procedure on the Flax P/R/O-Nets, no torch.

The procedure is facenet-pytorch 2.6.0's `detect_face`, step for step, so boxes, probabilities
and landmarks match it (tests/test_detect.py; measured differences in docs/datasets.md, Face crops):
1. pyramid: scales 12/min_face_size * factor^k while the short side stays >= 12 px; each level
   is the image area-resized (torch `interpolate(mode="area")`) to (int(h*s+1), int(w*s+1)),
   normalised (x - 127.5) * 0.0078125; P-Net cells with p >= 0.6 become boxes, NMS 0.5 per
   level, then NMS 0.7 over all levels, box regression, squared (`_rerec`);
2. R-Net on 24x24 area-resized crops (clipped at the border), p > 0.7, NMS 0.7, regression,
   squared; 3. O-Net on 48x48 crops, p > 0.7, landmarks, regression, NMS 0.7 by
   intersection over the smaller box. Faces come back largest first.

What runs where: the networks (and the pyramid's resizing) under `jax.jit` on the default
device; box arithmetic and NMS in float32 numpy on the host (a few hundred boxes; the same
float32 operations as facenet, so the same boxes). Compiled shapes are bucketed: one image
size is one P-Net program per batch bucket (several same-sized photos run as one batch, padded
to a power of two), and R-Net/O-Net see candidate counts padded to powers of two (>= 16).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np

from hsnet_jax.models.mtcnn import ONet, PNet, RNet, load_variables

MIN_FACE_SIZE = 20
FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
_F32 = np.float32


@dataclasses.dataclass
class Faces:
    """The faces of one image, largest box first (pixel coordinates of the image given)."""

    boxes: np.ndarray  # [N, 4] float32 x0, y0, x1, y1
    probs: np.ndarray  # [N] float32 face probability (O-Net)
    landmarks: np.ndarray  # [N, 5, 2] float32 (x, y): eyes, nose, mouth corners

    def __len__(self) -> int:
        return len(self.boxes)


def _empty() -> Faces:
    return Faces(np.zeros((0, 4), _F32), np.zeros((0,), _F32), np.zeros((0, 5, 2), _F32))


def pyramid_scales(h: int, w: int, min_face_size: int = MIN_FACE_SIZE, factor: float = FACTOR) -> list[float]:
    """facenet's scales (Python floats, as it computes them); none for an image under ~20 px."""
    m = 12.0 / min_face_size
    minl, scale, scales = min(h, w) * m, m, []
    while minl >= 12:
        scales.append(scale)
        scale, minl = scale * factor, minl * factor
    return scales


def integral(images: np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, C] -> exact integer sums [B, H+1, W+1, C] over every top-left rectangle."""
    h, w = images.shape[1:3]
    dtype = np.uint32 if 255 * h * w < 2 ** 32 else np.int64
    rows = images.astype(dtype)
    for i in range(1, h):  # row after row: a third of np.cumsum(axis=1)'s time (681x1024: 7 ms)
        rows[:, i] += rows[:, i - 1]
    s = np.zeros((images.shape[0], h + 1, w + 1, images.shape[3]), dtype)
    np.cumsum(rows, axis=2, out=s[:, 1:, 1:])
    return s


def area_resize(sums: np.ndarray, b, y0, x0, y1, x1, out_h: int, out_w: int) -> np.ndarray:
    """torch `interpolate(mode="area")` of the regions [y0, y1) x [x0, x1) of images `b`, from
    their integral images: float32 [K, out_h, out_w, C].

    On uint8 pixels torch's float32 bin sums are exact integers, as these are, and each mean is
    one float32 division chain (sum / kh / kw), so the result is torch's to the bit.
    """
    b, y0, x0, y1, x1 = (np.atleast_1d(np.asarray(v, np.int64)) for v in (b, y0, x0, y1, x1))
    rs, re = area_bins(y1 - y0, out_h)
    cs, ce = area_bins(x1 - x0, out_w)
    rs, re, cs, ce = rs + y0[:, None], re + y0[:, None], cs + x0[:, None], ce + x0[:, None]
    k = b[:, None, None]

    def at(r, c):
        return sums[k, r[:, :, None], c[:, None, :]].astype(np.int64)

    total = at(re, ce) - at(rs, ce) - at(re, cs) + at(rs, cs)
    kh = (re - rs).astype(_F32)[:, :, None, None]
    kw = (ce - cs).astype(_F32)[:, None, :, None]
    return total.astype(_F32) / kh / kw


def resize_whole(sums: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """`area_resize` of whole images (the pyramid), by separable row and column gathers (in the
    sums' own unsigned type: the sums grow along both axes, so no difference is negative)."""
    rs, re = area_bins(np.array([sums.shape[1] - 1]), out_h)
    cs, ce = area_bins(np.array([sums.shape[2] - 1]), out_w)
    rows = sums[:, re[0]] - sums[:, rs[0]]
    total = rows[:, :, ce[0]] - rows[:, :, cs[0]]
    kh = (re[0] - rs[0]).astype(_F32)[None, :, None, None]
    kw = (ce[0] - cs[0]).astype(_F32)[None, None, :, None]
    return total.astype(_F32) / kh / kw


def area_bins(n_in: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch adaptive average pooling's bins along one axis, for K regions of lengths `n_in`:
    output i averages inputs start .. end - 1 with start = floor(i*n_in/n_out) and
    end = ceil((i+1)*n_in/n_out) ([K, n_out] each)."""
    i = np.arange(n_out)[None, :]
    n = n_in[:, None]
    return (i * n) // n_out, -((-(i + 1) * n) // n_out)


def _normalise(x):
    return (x - _F32(127.5)) * _F32(0.0078125)


_pnet = jax.jit(lambda variables, level, valid: PNet().apply(variables, level, valid))


def level_bucket(n: int) -> int:
    """The padded side a pyramid level of side n runs at: multiples of 16, 32 above 256, 64
    above 512 (at most 6-12% more pixels), so
    photos of similar sizes reuse each other's compiled P-Net programs."""
    step = 16 if n <= 256 else 32 if n <= 512 else 64
    return -(-n // step) * step


_rnet = jax.jit(lambda variables, crops: RNet().apply(variables, crops))
_onet = jax.jit(lambda variables, crops: ONet().apply(variables, crops))


def bucket(n: int, smallest: int = 1) -> int:
    """The batch size a batch of n is padded to: the smallest power of two or 1.5 x power of
    two >= max(n, smallest) (at most a third wasted, few compiled shapes)."""
    n = max(n, smallest)
    power = 1 << max(0, n - 1).bit_length()
    return power * 3 // 4 if power >= 4 and power * 3 // 4 >= n else power


def _pad_batch(x: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)]) if size > len(x) else x


def nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float,
        method: str = "union") -> np.ndarray:
    """Greedy NMS within each group, indices kept in order of falling score.

    "union": torchvision's `batched_nms` (IoU, areas (x1-x0)*(y1-y0), stable sort, suppress
    IoU > threshold); "min": facenet's `nms_numpy` 'Min' (areas with +1, overlap over the
    smaller area, numpy's default argsort, suppress overlap > threshold).
    """
    plus = 0 if method == "union" else 1
    x0, y0, x1, y1 = (boxes[:, k] for k in range(4))
    areas = (x1 - x0 + plus) * (y1 - y0 + plus)
    order = np.argsort(-scores, kind="stable") if method == "union" else np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(_F32(0), np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + plus)
        h = np.maximum(_F32(0), np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + plus)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter) if method == "union" else \
            inter / np.minimum(areas[i], areas[rest])
        order = rest[~((overlap.astype(np.float64) > threshold) & (groups[rest] == groups[i]))]
    return np.asarray(keep, np.int64)


def _rerec(boxes: np.ndarray) -> np.ndarray:
    """Squares each box around its centre (facenet's `rerec`), float32, in place order kept."""
    b = boxes.copy()
    h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * _F32(0.5) - side * _F32(0.5)
    b[:, 1] = b[:, 1] + h * _F32(0.5) - side * _F32(0.5)
    b[:, 2], b[:, 3] = b[:, 0] + side, b[:, 1] + side
    return b


def _bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    b = boxes.copy()
    w, h = b[:, 2] - b[:, 0] + _F32(1), b[:, 3] - b[:, 1] + _F32(1)
    b[:, :4] = b[:, :4] + reg * np.stack([w, h, w, h], 1)
    return b


def _crops(sums: np.ndarray, boxes: np.ndarray, inds: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """facenet's `pad` + crop + area resize: ([K, size, size, 3] normalised, mask of boxes with a
    non-empty crop)."""
    h, w = sums.shape[1] - 1, sums.shape[2] - 1
    t = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(t[:, 0], 1), np.maximum(t[:, 1], 1)
    ex, ey = np.minimum(t[:, 2], w), np.minimum(t[:, 3], h)
    ok = (ey > y - 1) & (ex > x - 1)
    crops = area_resize(sums, inds[ok], y[ok] - 1, x[ok] - 1, ey[ok], ex[ok], size, size)
    return _normalise(crops), ok


def _run_padded(net, variables, crops: np.ndarray):
    n = len(crops)
    outs = net(variables, _pad_batch(crops, bucket(n, 16)))
    return [np.asarray(o)[:n] for o in outs]


class Detector:
    """MTCNN with facenet-pytorch's defaults; `detect` takes a batch of same-sized RGB photos."""

    def __init__(self, min_face_size: int = MIN_FACE_SIZE, thresholds: Sequence[float] = THRESHOLDS,
                 factor: float = FACTOR):
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        self.variables = load_variables()

    def _stage1(self, images: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, h, w = images.shape[:3]
        scales = pyramid_scales(h, w, self.min_face_size, self.factor)
        if not scales:
            return np.zeros((0, 9), _F32), np.zeros((0,), np.int64)
        outs = []
        for scale in scales:  # dispatched asynchronously, read back below
            lh, lw = int(h * scale + 1), int(w * scale + 1)
            level = np.zeros((bucket(n), level_bucket(lh), level_bucket(lw), 3), _F32)
            level[:n, :lh, :lw] = _normalise(resize_whole(sums, lh, lw))
            outs.append((_pnet(self.variables["pnet"], level, np.array([lh, lw], np.int32)),
                         ((lh - 2 + 1) // 2 - 4, (lw - 2 + 1) // 2 - 4)))
        boxes, inds = [], []
        for scale, ((reg, probs), (oh, ow)) in zip(scales, outs):
            probs, reg = np.asarray(probs)[:n, :oh, :ow], np.asarray(reg)[:n, :oh, :ow]
            b, yy, xx = np.nonzero(probs >= self.thresholds[0])
            cell = np.stack([xx, yy], 1).astype(_F32)
            q1 = np.floor((2 * cell + 1) / _F32(scale))
            q2 = np.floor((2 * cell + 12) / _F32(scale))
            found = np.concatenate([q1, q2, probs[b, yy, xx][:, None], reg[b, yy, xx]], 1).astype(_F32)
            pick = nms(found[:, :4], found[:, 4], b, 0.5)
            boxes.append(found[pick])
            inds.append(b[pick])
        boxes, inds = np.concatenate(boxes), np.concatenate(inds)
        pick = nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[pick], inds[pick]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        moved = boxes[:, :4] + boxes[:, 5:9] * np.stack([regw, regh, regw, regh], 1)
        return _rerec(np.concatenate([moved, boxes[:, 4:5]], 1)), inds

    def _refine(self, sums, boxes, inds, net, size, threshold):
        crops, ok = _crops(sums, boxes, inds, size)
        boxes, inds = boxes[ok], inds[ok]
        outs = _run_padded(net, self.variables[{24: "rnet", 48: "onet"}[size]], crops)
        keep = outs[-1] > threshold
        scored = np.concatenate([boxes[keep, :4], outs[-1][keep, None]], 1)
        return scored, inds[keep], [o[keep] for o in outs[:-1]]

    def detect(self, images: np.ndarray) -> list[Faces]:
        """uint8 [B, H, W, 3] -> one `Faces` per image."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected RGB images [B, H, W, 3], got shape {images.shape}")
        sums = integral(images)
        boxes, inds = self._stage1(images, sums)
        if len(boxes):
            boxes, inds, (reg,) = self._refine(sums, boxes, inds, _rnet, 24, self.thresholds[1])
            pick = nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds = _rerec(_bbreg(boxes[pick], reg[pick])), inds[pick]
        points = np.zeros((0, 5, 2), _F32)
        if len(boxes):
            boxes, inds, (reg, marks) = self._refine(sums, boxes, inds, _onet, 48, self.thresholds[2])
            w, h = boxes[:, 2:3] - boxes[:, 0:1] + _F32(1), boxes[:, 3:4] - boxes[:, 1:2] + _F32(1)
            px = w * marks[:, :5] + boxes[:, 0:1] - _F32(1)
            py = h * marks[:, 5:] + boxes[:, 1:2] - _F32(1)
            points = np.stack([px, py], 2)
            boxes = _bbreg(boxes, reg)
            pick = nms(boxes[:, :4], boxes[:, 4], inds, 0.7, "min")
            boxes, inds, points = boxes[pick], inds[pick], points[pick]
        faces = []
        for i in range(len(images)):
            b, p = boxes[inds == i], points[inds == i]
            if not len(b):
                faces.append(_empty())
                continue
            order = np.argsort((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[::-1]
            faces.append(Faces(b[order, :4], b[order, 4], p[order]))
        return faces

    def warm(self, candidates: Sequence[int] = (16, 32)) -> None:
        """Compiles R-Net and O-Net for these padded candidate counts (`bucket`), so that a
        server's first faces do not wait for it; P-Net compiles per photo size on first use."""
        for n in candidates:
            for net, size, name in ((_rnet, 24, "rnet"), (_onet, 48, "onet")):
                _run_padded(net, self.variables[name], np.zeros((n, size, size, 3), _F32))
