"""MTCNN's detection procedure (facenet-pytorch 2.6.0's `detect_face`, step for step) in numpy,
handed its three networks: the Flax ones under `jax.jit` (`hsnet_jax.faces.detect`) or ONNX Runtime
sessions (`hsnet_jax.deploy`). numpy only, so deploy imports it without jax (numpy and Pillow only).

1. pyramid: scales 12/min_face_size * factor^k while the short side stays >= 12 px; each level
   is the image area-resized (torch `interpolate(mode="area")`) to (int(h*s+1), int(w*s+1)),
   normalised (x - 127.5) * 0.0078125; P-Net cells with p >= 0.6 become boxes, NMS 0.5 per
   level, then NMS 0.7 over all levels, box regression, squared (`rerec`);
2. R-Net on 24x24 area-resized crops (clipped at the border), p > 0.7, NMS 0.7, regression,
   squared; 3. O-Net on 48x48 crops, p > 0.7, landmarks, regression, NMS 0.7 by
   intersection over the smaller box. Faces come back largest first.

`refind` runs steps 2 and 3 alone on boxes where faces were a moment ago (a video's previous
frame): no pyramid, so a few milliseconds instead of a whole detection.

Each photo is detected on its own (facenet's single-image `detect`): a photo's faces are the
same, to the bit, alone, in any batch and in any order (tests/test_deploy_detect.py). Box
arithmetic and NMS are float32 numpy, the same float32 operations as facenet.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from PIL import Image

MIN_FACE_SIZE = 20
FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
# `refind`: the candidates around each box, squares of these sides (x the box's longer side)
# about its centre and about the centre moved by these fractions of the side, for faces that
# moved or grew since (R-Net re-centres a face that fills most of a candidate).
REFIND_GROWTH = (1.0, 1.25, 1.6)
REFIND_SHIFTS = ((0, 0), (-0.25, 0), (0, -0.25), (0.25, 0), (0, 0.25))
# ... and the R-Net boxes overlapping a better one by more than this IoU dropped before O-Net
# (0.7 in a whole detection): the candidates of one face converge, and O-Net is the cost.
REFIND_NMS = 0.4
_F32 = np.float32


class Networks(NamedTuple):
    """The three networks as callables on float32 NHWC batches, normalised by `normalise_in_place`.

    pnet(level [1, h, w, 3]) -> (regression [1, >=oh, >=ow, 4], probability [1, >=oh, >=ow]);
    rnet(crops [K, 24, 24, 3]) -> (regression [>=K, 4], probability [>=K]);
    onet(crops [K, 48, 48, 3]) -> (regression [>=K, 4], landmarks [>=K, 10], probability [>=K]).
    Outputs may be larger (padded) and lazy (any array `np.asarray` reads): P-Net runs on every
    level before the first is read back, so asynchronous runtimes overlap them.
    """

    pnet: Callable[[np.ndarray], Any]
    rnet: Callable[[np.ndarray], Any]
    onet: Callable[[np.ndarray], Any]


@dataclasses.dataclass
class Faces:
    """The faces of one image, largest box first (pixel coordinates of the image given)."""

    boxes: np.ndarray  # [N, 4] float32 x0, y0, x1, y1
    probs: np.ndarray  # [N] float32 face probability (O-Net)
    landmarks: np.ndarray  # [N, 5, 2] float32 (x, y): eyes, nose, mouth corners

    def __len__(self) -> int:
        return len(self.boxes)


def empty() -> Faces:
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
    sums' own unsigned type: the sums grow along both axes, so no difference is negative), in
    place where it can (half the time of fancy indexing and fresh arrays at 1280x720)."""
    rs, re = area_bins(np.array([sums.shape[1] - 1]), out_h)
    cs, ce = area_bins(np.array([sums.shape[2] - 1]), out_w)
    rows = np.take(sums, re[0], axis=1)
    rows -= np.take(sums, rs[0], axis=1)
    total = np.take(rows, ce[0], axis=2)
    total -= np.take(rows, cs[0], axis=2)
    x = total.astype(_F32)
    x /= (re[0] - rs[0]).astype(_F32)[None, :, None, None]
    x /= (ce[0] - cs[0]).astype(_F32)[None, None, :, None]
    return x


def area_bins(n_in: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch adaptive average pooling's bins along one axis, for K regions of lengths `n_in`:
    output i averages inputs start .. end - 1 with start = floor(i*n_in/n_out) and
    end = ceil((i+1)*n_in/n_out) ([K, n_out] each)."""
    i = np.arange(n_out)[None, :]
    n = n_in[:, None]
    return (i * n) // n_out, -((-(i + 1) * n) // n_out)


def normalise_in_place(x: np.ndarray) -> np.ndarray:
    """(x - 127.5) * 0.0078125 in float32: in place when x is float32 (the fresh arrays of the
    pyramid and the crops), else on a float32 copy."""
    x = x if x.dtype == _F32 else x.astype(_F32)
    x -= _F32(127.5)
    x *= _F32(0.0078125)
    return x


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


def rerec(boxes: np.ndarray) -> np.ndarray:
    """Squares each box around its centre (facenet's `rerec`), float32, in place order kept."""
    b = boxes.copy()
    h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * _F32(0.5) - side * _F32(0.5)
    b[:, 1] = b[:, 1] + h * _F32(0.5) - side * _F32(0.5)
    b[:, 2], b[:, 3] = b[:, 0] + side, b[:, 1] + side
    return b


def bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    b = boxes.copy()
    w, h = b[:, 2] - b[:, 0] + _F32(1), b[:, 3] - b[:, 1] + _F32(1)
    b[:, :4] = b[:, :4] + reg * np.stack([w, h, w, h], 1)
    return b


def crops(sums: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """facenet's `pad` + crop + area resize: ([K, size, size, 3] normalised, mask of boxes with a
    non-empty crop)."""
    h, w = sums.shape[1] - 1, sums.shape[2] - 1
    t = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(t[:, 0], 1), np.maximum(t[:, 1], 1)
    ex, ey = np.minimum(t[:, 2], w), np.minimum(t[:, 3], h)
    ok = (ey > y - 1) & (ex > x - 1)
    found = area_resize(sums, np.zeros(int(ok.sum()), np.int64), y[ok] - 1, x[ok] - 1, ey[ok], ex[ok], size, size)
    return normalise_in_place(found), ok


class Procedure:
    """MTCNN with facenet-pytorch's defaults around `networks`; `detect` takes RGB photos."""

    def __init__(self, networks: Networks, min_face_size: int = MIN_FACE_SIZE,
                 thresholds: Sequence[float] = THRESHOLDS, factor: float = FACTOR):
        self.networks, self.min_face_size = networks, min_face_size
        self.thresholds, self.factor = tuple(thresholds), factor

    def _stage1(self, image: np.ndarray, sums: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        scales = pyramid_scales(h, w, self.min_face_size, self.factor)
        outs = []
        for scale in scales:  # every level dispatched, then read back below
            lh, lw = int(h * scale + 1), int(w * scale + 1)
            outs.append((self.networks.pnet(normalise_in_place(resize_whole(sums, lh, lw))),
                         ((lh - 2 + 1) // 2 - 4, (lw - 2 + 1) // 2 - 4)))
        boxes = [np.zeros((0, 9), _F32)]
        for scale, ((reg, probs), (oh, ow)) in zip(scales, outs):
            probs, reg = np.asarray(probs)[0, :oh, :ow], np.asarray(reg)[0, :oh, :ow]
            yy, xx = np.nonzero(probs >= self.thresholds[0])
            cell = np.stack([xx, yy], 1).astype(_F32)
            q1 = np.floor((2 * cell + 1) / _F32(scale))
            q2 = np.floor((2 * cell + 12) / _F32(scale))
            found = np.concatenate([q1, q2, probs[yy, xx][:, None], reg[yy, xx]], 1).astype(_F32)
            boxes.append(found[nms(found[:, :4], found[:, 4], np.zeros(len(found)), 0.5)])
        boxes = np.concatenate(boxes)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], np.zeros(len(boxes)), 0.7)]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        moved = boxes[:, :4] + boxes[:, 5:9] * np.stack([regw, regh, regw, regh], 1)
        return rerec(np.concatenate([moved, boxes[:, 4:5]], 1))

    def _refine(self, sums: np.ndarray, boxes: np.ndarray, net: Callable, size: int, threshold: float):
        found, ok = crops(sums, boxes, size)
        boxes = boxes[ok]
        if len(found):
            outs = [np.asarray(o)[:len(found)] for o in net(found)]
        else:  # every box outside the image: the networks' outputs for no crop
            outs = [np.zeros((0, w), _F32) for w in ((4, 10) if size == 48 else (4,))] + [np.zeros(0, _F32)]
        keep = outs[-1] > threshold
        scored = np.concatenate([boxes[keep, :4], outs[-1][keep, None]], 1)
        return scored, [o[keep] for o in outs[:-1]]

    def detect_one(self, image: np.ndarray) -> Faces:
        """uint8 [H, W, 3] -> its `Faces`."""
        image = _checked(image)
        sums = integral(image[None])
        return self._finish(sums, self._stage1(image, sums))

    def refind_one(self, image: np.ndarray, near: np.ndarray) -> Faces:
        """The faces R-Net and O-Net find around the boxes `near` [K, 4] (pixel coordinates,
        where faces were a moment ago), without the pyramid: stages 2 and 3 of `detect_one` on
        squares around each box (`REFIND_GROWTH`, `REFIND_SHIFTS`), so a face that moved or grew
        since is inside a candidate. A face far from every box is not found."""
        image = _checked(image)
        near = np.asarray(near, _F32).reshape(-1, 4)
        if not len(near):
            return empty()
        centre, side = (near[:, :2] + near[:, 2:]) / 2, (near[:, 2:] - near[:, :2]).max(1, keepdims=True)
        candidates = np.concatenate([np.concatenate([c - side * _F32(g / 2), c + side * _F32(g / 2)], 1)
                                     for g in REFIND_GROWTH for c in (centre + side * _F32(d) for d in REFIND_SHIFTS)])
        scored = np.concatenate([candidates, np.ones((len(candidates), 1), _F32)], 1)
        return self._finish(integral(image[None]), scored, REFIND_NMS)

    def _finish(self, sums: np.ndarray, boxes: np.ndarray, rnet_nms: float = 0.7) -> Faces:
        """R-Net and O-Net on candidate boxes [K, 5] (x0, y0, x1, y1, score) -> `Faces`."""
        if len(boxes):
            boxes, (reg,) = self._refine(sums, boxes, self.networks.rnet, 24, self.thresholds[1])
            pick = nms(boxes[:, :4], boxes[:, 4], np.zeros(len(boxes)), rnet_nms)
            boxes = rerec(bbreg(boxes[pick], reg[pick]))
        if not len(boxes):
            return empty()
        boxes, (reg, marks) = self._refine(sums, boxes, self.networks.onet, 48, self.thresholds[2])
        w, h = boxes[:, 2:3] - boxes[:, 0:1] + _F32(1), boxes[:, 3:4] - boxes[:, 1:2] + _F32(1)
        points = np.stack([w * marks[:, :5] + boxes[:, 0:1] - _F32(1), h * marks[:, 5:] + boxes[:, 1:2] - _F32(1)], 2)
        boxes = bbreg(boxes, reg)
        pick = nms(boxes[:, :4], boxes[:, 4], np.zeros(len(boxes)), 0.7, "min")
        boxes, points = boxes[pick], points[pick]
        if not len(boxes):
            return empty()
        order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
        return Faces(boxes[order, :4], boxes[order, 4], points[order])

    def detect(self, images: Sequence[np.ndarray] | np.ndarray, max_side: int | None = None) -> list[Faces]:
        """RGB uint8 photos (a list of any sizes, or [B, H, W, 3]) -> one `Faces` each, in the
        photo's pixel coordinates. A photo larger than `max_side` is shrunk (bilinear) for
        detection and its boxes and landmarks scaled back."""
        return [_scaled(self.detect_one, image, None, max_side) for image in images]

    def refind(self, image: np.ndarray, near: np.ndarray, max_side: int | None = None) -> Faces:
        """`refind_one` on a photo shrunk as `detect` shrinks it (boxes in the photo's pixels)."""
        return _scaled(self.refind_one, image, near, max_side)


def _scaled(find: Callable, image: np.ndarray, near: np.ndarray | None, max_side: int | None) -> Faces:
    """`find(image[, near])` on the image shrunk to `max_side`, boxes and landmarks scaled back."""
    small, scale = shrunk(np.asarray(image), max_side)
    s = _F32(scale)
    faces = find(small) if near is None else find(small, np.asarray(near, _F32) * s)
    return faces if s == 1 else Faces(faces.boxes / s, faces.probs, faces.landmarks / s)


def _checked(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    return image


def too_small(image: np.ndarray) -> bool:
    """True for an image whose short side is under MTCNN's minimum face size (no pyramid level)."""
    return min(image.shape[:2]) < MIN_FACE_SIZE


def shrunk(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """The image shrunk (PIL bilinear) to `max_side` on its longer side, and the scale; as it is
    when already small enough or `max_side` is None."""
    h, w = image.shape[:2]
    scale = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)), scale
