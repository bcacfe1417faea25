"""Procedurally drawn cartoon faces whose only label-carrying cue is the expression.

Each class fixes the geometry of the brows, eyes, mouth and skin folds (FACS-like cues:
raised or V-shaped brows, wide or narrowed eyes, a smile, a frown, an open O, a stretched or
clenched mouth, a raised upper lip, forehead lines, creases between the brows, nose wrinkles;
and, cartoon-style, smiling eyes as arcs, fear's small irises and a tear for sadness). Everything else is random per image: face size, aspect, position
and rotation, skin tone, hair, background colour and gradient, lighting and noise. So a
classifier must find small parts at varying places, which a CNN does and a linear model on
raw pixels cannot (tests/test_data_synthetic.py checks both sides).

Images are drawn with PIL at twice the size and box-filtered down (anti-aliasing). Every
image has its own generator seeded by (seed, split, index), so a set is reproducible and
any slice of it can be drawn independently.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from hsnet_jax.data.expressions import CANONICAL_EXPRESSIONS

IMAGE_SIZE = 100
_SS = 2  # supersampling factor
# Pixel coordinates in [0, 1) (drawing canvas) and [-0.5, 0.5) (final image), computed once.
_CANVAS_YY, _CANVAS_XX = np.mgrid[0:IMAGE_SIZE * _SS, 0:IMAGE_SIZE * _SS] / (IMAGE_SIZE * _SS)
_IMAGE_YY, _IMAGE_XX = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] / IMAGE_SIZE - 0.5

# Per class: brow (inner, outer) height above the eye in units of the face's vertical radius,
# and its arch; eye opening relative to the eye width and iris size (small in fear; "smiling"
# eyes are drawn as arcs);
# mouth width, corner lift (left, right), upper and lower lip midpoint offsets (units of the
# face's horizontal radius; +y is down), the part of the opening filled by teeth (1: clenched);
# forehead lines; vertical lines between the brows; nose wrinkles; a tear.
_EXPRESSIONS = {
    "surprise":  dict(brow=(0.48, 0.48), arch=0.12, eye=1.00, iris=0.50, smiling_eyes=False, width=0.32, lift=(0.00, 0.00), upper=-0.18, lower=0.34, teeth=0.0, forehead=True, glabella=False, wrinkles=False, tear=False),
    "fear":      dict(brow=(0.46, 0.16), arch=0.00, eye=1.00, iris=0.22, smiling_eyes=False, width=0.80, lift=(-0.12, -0.12), upper=-0.03, lower=0.13, teeth=0.5, forehead=False, glabella=False, wrinkles=False, tear=False),
    "disgust":   dict(brow=(0.08, 0.14), arch=0.00, eye=0.25, iris=0.50, smiling_eyes=False, width=0.52, lift=(0.18, -0.08), upper=-0.12, lower=0.02, teeth=0.0, forehead=False, glabella=False, wrinkles=True, tear=False),
    "happiness": dict(brow=(0.26, 0.26), arch=0.06, eye=0.45, iris=0.50, smiling_eyes=True, width=0.76, lift=(0.26, 0.26), upper=0.02, lower=0.20, teeth=0.3, forehead=False, glabella=False, wrinkles=False, tear=False),
    "sadness":   dict(brow=(0.40, 0.14), arch=0.00, eye=0.35, iris=0.50, smiling_eyes=False, width=0.52, lift=(-0.24, -0.24), upper=0.00, lower=0.00, teeth=0.0, forehead=False, glabella=False, wrinkles=False, tear=True),
    "anger":     dict(brow=(-0.04, 0.32), arch=0.00, eye=0.30, iris=0.50, smiling_eyes=False, width=0.60, lift=(-0.04, -0.04), upper=-0.08, lower=0.10, teeth=1.0, forehead=False, glabella=True, wrinkles=False, tear=False),
    "neutral":   dict(brow=(0.26, 0.26), arch=0.00, eye=0.60, iris=0.50, smiling_eyes=False, width=0.50, lift=(0.00, 0.00), upper=0.00, lower=0.00, teeth=0.0, forehead=False, glabella=False, wrinkles=False, tear=False),
}
assert tuple(_EXPRESSIONS) == CANONICAL_EXPRESSIONS


def _random_colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, ...]:
    return tuple(int(c) for c in rng.integers(low, high, 3))


def _skin(rng: np.random.Generator) -> tuple[int, ...]:
    """A skin tone from dark brown to pale, or occasionally a cartoon colour."""
    if rng.random() < 0.15:
        return _random_colour(rng, 60, 256)
    t = rng.random()
    base = np.array([75, 45, 30]) * (1 - t) + np.array([250, 215, 190]) * t
    return tuple(int(c) for c in np.clip(base + rng.normal(0, 12, 3), 0, 255))


def _quad(p0, p1, p2, n: int = 12) -> list[tuple[float, float]]:
    """Points of the quadratic Bezier curve through p0 and p2 with control point p1."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)
    return [tuple(p) for p in pts]


def _draw_face(rng: np.random.Generator, label: int) -> np.ndarray:
    size = IMAGE_SIZE * _SS
    expression = _EXPRESSIONS[CANONICAL_EXPRESSIONS[label]]
    jitter = lambda v, s=0.035: v + rng.normal(0.0, s)  # noqa: E731 -- within-class variation

    # Background: a random colour with a random linear gradient.
    direction = rng.normal(size=2)
    ramp = (direction[0] * (_CANVAS_YY - 0.5) + direction[1] * (_CANVAS_XX - 0.5))[..., None]
    bg = np.asarray(_random_colour(rng), np.float32) + ramp * rng.uniform(40, 160) * rng.choice([-1, 1], 3)
    canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))

    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    rx = rng.uniform(0.28, 0.42) * size
    ry = rx * rng.uniform(1.1, 1.35)
    cx = size / 2 + rng.uniform(-0.13, 0.13) * size
    cy = size / 2 + rng.uniform(-0.10, 0.12) * size
    skin = _skin(rng)
    dark = tuple(int(c * 0.35) for c in skin)
    line = max(2, int(round(rx * 0.09)))

    hair = _random_colour(rng, 0, 200) if rng.random() < 0.8 else skin
    hair_top = ry * rng.uniform(1.0, 1.25)
    draw.ellipse([cx - rx * 1.08, cy - hair_top, cx + rx * 1.08, cy + ry * rng.uniform(0.0, 0.5)], fill=hair)
    draw.ellipse([cx - rx * 1.08, cy - ry * 0.3, cx - rx * 0.85, cy + ry * 0.1], fill=skin)  # ears
    draw.ellipse([cx + rx * 0.85, cy - ry * 0.3, cx + rx * 1.08, cy + ry * 0.1], fill=skin)
    draw.ellipse([cx - rx, cy - ry * rng.uniform(0.8, 0.95), cx + rx, cy + ry], fill=skin)

    # Eyes: white almond with an iris, or a smiling arc; opening is the cue.
    eye_y = cy - ry * rng.uniform(0.12, 0.2)
    eye_dx = rx * rng.uniform(0.37, 0.44)
    eye_w = rx * rng.uniform(0.22, 0.27)
    eye_h = eye_w * max(0.12, jitter(expression["eye"], 0.05))
    iris = _random_colour(rng, 0, 160)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        if expression["smiling_eyes"]:
            draw.line(_quad((ex - eye_w, eye_y + eye_h * 0.5), (ex, eye_y - eye_h * 1.5), (ex + eye_w, eye_y + eye_h * 0.5)),
                      fill=dark, width=line, joint="curve")
            continue
        draw.ellipse([ex - eye_w, eye_y - eye_h, ex + eye_w, eye_y + eye_h], fill=(250, 250, 250), outline=dark, width=max(1, line // 2))
        r = min(eye_w * expression["iris"], eye_h * 0.95)
        draw.ellipse([ex - r, eye_y - r, ex + r, eye_y + r], fill=iris)
    if expression["tear"]:  # a drop under one eye
        tx, ty = cx + rng.choice([-1, 1]) * eye_dx, eye_y + eye_h + ry * 0.12
        draw.ellipse([tx - rx * 0.06, ty - rx * 0.09, tx + rx * 0.06, ty + rx * 0.09], fill=(120, 190, 255), outline=dark)

    # Brows: inner and outer end heights (V, raised, lowered) and an arch.
    inner, outer = (jitter(h) * ry for h in expression["brow"])
    base = eye_y - eye_h - ry * 0.06
    brow_w = max(2, int(round(rx * rng.uniform(0.12, 0.16))))
    for side in (-1, 1):
        p_in = (cx + side * rx * 0.14, base - inner)
        p_out = (cx + side * (eye_dx + eye_w * 1.1), base - outer)
        mid = ((p_in[0] + p_out[0]) / 2, (p_in[1] + p_out[1]) / 2 - expression["arch"] * ry)
        draw.line(_quad(p_in, mid, p_out), fill=dark, width=brow_w, joint="curve")
    if expression["glabella"]:  # lowered, drawn-together brows crease the skin between them
        for side in (-1, 1):
            gx = cx + side * rx * 0.07
            draw.line([(gx, base - inner - ry * 0.12), (gx, base - inner + ry * 0.02)], fill=dark, width=max(1, line // 2))
    if expression["forehead"]:  # raised brows wrinkle the forehead
        for k in (1, 2):
            y = base - inner - k * ry * 0.1
            draw.line(_quad((cx - rx * 0.4, y + ry * 0.02), (cx, y - ry * 0.04), (cx + rx * 0.4, y + ry * 0.02)),
                      fill=dark, width=max(1, line // 2), joint="curve")

    # Nose, with horizontal wrinkles across its bridge for disgust.
    nose_y = cy + ry * 0.18
    draw.line([(cx, eye_y + eye_h * 0.5), (cx - rx * 0.08, nose_y), (cx + rx * 0.06, nose_y)], fill=dark, width=max(1, line // 2))
    if expression["wrinkles"]:
        for k in range(3):
            y = eye_y + (k - 0.5) * ry * 0.08
            draw.line([(cx - rx * 0.2, y + ry * 0.03), (cx, y), (cx + rx * 0.2, y + ry * 0.03)], fill=dark, width=line)

    # Mouth: corners, upper and lower lip midpoints.
    my = cy + ry * rng.uniform(0.48, 0.56)
    half = jitter(expression["width"]) * rx / 2
    lift_l, lift_r = (jitter(v, 0.025) * rx for v in expression["lift"])
    if rng.random() < 0.5:  # which side a one-sided expression raises is not the cue
        lift_l, lift_r = lift_r, lift_l
    left, right = (cx - half, my - lift_l), (cx + half, my - lift_r)
    upper_y = my + jitter(expression["upper"], 0.015) * rx
    lower_y = my + jitter(expression["lower"], 0.015) * rx
    # Control points for a curve whose midpoint lies at upper_y / lower_y.
    upper = _quad(left, (cx, 2 * upper_y - (left[1] + right[1]) / 2), right)
    lower = _quad(left, (cx, 2 * lower_y - (left[1] + right[1]) / 2), right)
    lips = tuple(int(c) for c in np.clip(np.asarray(skin) * rng.uniform(0.45, 0.7) + [40, 0, 0], 0, 255))
    if lower_y - upper_y > 0.04 * rx:
        draw.polygon(upper + lower[::-1], fill=(60, 15, 20), outline=lips)
        if expression["teeth"]:  # a white band under the upper lip
            teeth_y = upper_y + expression["teeth"] * (lower_y - upper_y)
            teeth = _quad(left, (cx, 2 * teeth_y - (left[1] + right[1]) / 2), right)
            draw.polygon(upper + teeth[::-1], fill=(245, 245, 235))
        draw.line(upper, fill=lips, width=line, joint="curve")
        draw.line(lower, fill=lips, width=line, joint="curve")
    else:
        draw.line(upper, fill=lips, width=int(line * 1.5), joint="curve")

    angle = rng.uniform(-10.0, 10.0)
    layer = layer.rotate(angle, resample=Image.BILINEAR, center=(cx, cy))
    canvas.paste(layer, (0, 0), layer)
    image = np.asarray(canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX), np.float32)

    # Lighting: a random directional gain across the image, then sensor noise.
    light = rng.normal(size=2) * rng.uniform(0.1, 0.5)
    gain = rng.uniform(0.7, 1.2) * (1.0 + light[0] * _IMAGE_YY + light[1] * _IMAGE_XX)
    image = image * gain[..., None] + rng.normal(0.0, rng.uniform(2.0, 10.0), image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def draw_faces(seed: int, split_index: int, count: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images [count, 100, 100, 3] uint8 and labels [count] of one split, classes round-robin.

    Example `i` of split `split_index` depends only on (seed, split_index, i), and the label
    is `i % 7`, so each split is balanced whenever its size is a multiple of 7.
    """
    labels = (np.arange(start, start + count) % len(CANONICAL_EXPRESSIONS)).astype(np.int32)
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for j, label in enumerate(labels):
        rng = np.random.default_rng([seed, split_index, start + j])
        images[j] = _draw_face(rng, int(label))
    return images, labels
