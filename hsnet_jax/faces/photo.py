"""Decoding a photo file into upright 8-bit RGB: the one decoder of the package (prepare,
predict, deploy). numpy and Pillow only, so `hsnet_jax.deploy` reads photos as `predict` does."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# The colour transparent pixels become (RGBA, LA, PA, palette or RGB with a transparent colour).
BACKGROUND = (255, 255, 255)
# What PIL raises for a file it cannot decode.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image -> upright 8-bit RGB: EXIF orientation applied, alpha composited on
    BACKGROUND (so transparent pixels are BACKGROUND whatever colour is stored under them),
    16/32-bit greyscale (I;16, I) scaled from 0..65535 and float (F) clipped to 0..255."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        pixels = np.asarray(image, np.float64)
        if image.mode != "F" and (image.mode.startswith("I;16") or pixels.max(initial=0) > 255):
            pixels = pixels / 257.0  # 65535 -> 255
        image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND + (255,)), rgba)
    return image.convert("RGB")


def load_rgb(path: str) -> np.ndarray:
    """One file -> uint8 [H, W, 3] by `to_rgb`; raises one of DECODE_ERRORS when undecodable."""
    with Image.open(path) as image:
        return np.asarray(to_rgb(image))


def unreadable(path: str, error: Exception) -> str:
    """The one-line reason a photo could not be used (predict and deploy say the same)."""
    return f"{path}: cannot read the image ({str(error) or type(error).__name__})"
