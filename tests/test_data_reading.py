"""The one decoder of prepare and predict (hsnet_jax.data.reading.to_rgb) on files written the
way cameras and tools write them: EXIF orientation, greyscale, palette, 16-bit, transparency."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from hsnet_jax.data.reading import BACKGROUND, decode, load_rgb, read_images


@pytest.fixture(scope="module")
def photo():
    return skimage.data.astronaut()[100:300, 150:250]  # 200 x 100, not symmetric


def test_exif_orientation_is_applied(photo, tmp_path):
    # A camera held sideways stores the pixels rotated and says so in the Orientation tag (6:
    # rotate 90 degrees clockwise to view).
    stored = np.rot90(photo, 1)  # what the sensor wrote: 100 x 200
    exif = Image.Exif()
    exif[0x0112] = 6
    path = str(tmp_path / "phone.png")
    Image.fromarray(stored).save(path, exif=exif)
    upright = load_rgb(path)
    assert upright.shape == photo.shape
    np.testing.assert_array_equal(upright, photo)


@pytest.mark.parametrize("mode", ["L", "P", "I;16", "RGBA", "LA", "CMYK"])
def test_modes_decode_to_rgb(photo, mode, tmp_path):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)  # 16-bit PNG, full range
        assert image.mode == "I;16"
        want = np.repeat(grey[:, :, None], 3, 2)
    elif mode in ("L", "LA"):
        image = Image.fromarray(grey).convert(mode)
        want = np.repeat(grey[:, :, None], 3, 2)
    else:
        image = Image.fromarray(photo).convert(mode)
        want = np.asarray(image.convert("RGB"))
    path = str(tmp_path / ("image.jpg" if mode == "CMYK" else "image.png"))
    image.save(path, quality=95) if mode == "CMYK" else image.save(path)
    got = load_rgb(path)
    assert got.dtype == np.uint8 and got.shape == photo.shape
    if mode == "CMYK":  # lossy: close, not equal
        assert np.abs(got.astype(int) - want).mean() < 6
    else:
        np.testing.assert_array_equal(got, want)


def test_transparent_pixels_become_the_background_whatever_colour_is_stored(tmp_path):
    # Two FERG-DB-like cartoons: the same visible character, different colours under alpha 0.
    rng = np.random.default_rng(0)
    character = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    alpha = np.zeros((64, 64), np.uint8)
    alpha[16:48, 16:48] = 255
    alpha[10:16, 10:54] = 128  # a half-transparent edge
    paths = []
    for k, hidden in enumerate(((0, 0, 0), (255, 0, 255), (12, 200, 40))):
        rgb = character.copy()
        rgb[alpha == 0] = hidden
        paths.append(str(tmp_path / f"aia_joy_{k}.png"))
        Image.fromarray(np.dstack([rgb, alpha])).save(paths[-1])
    decoded = [load_rgb(p) for p in paths]
    for d in decoded[1:]:
        np.testing.assert_array_equal(d, decoded[0])
    np.testing.assert_array_equal(decoded[0][0, 0], BACKGROUND)
    np.testing.assert_array_equal(decoded[0][32, 32], character[32, 32])
    half = (character[12, 30].astype(int) * 128 + 255 * 127) / 255
    assert np.abs(decoded[0][12, 30] - half).max() <= 1
    # The dataset path (decode + resize, as FERG-DB's 256x256 is stored) agrees too.
    stored, _, _, _ = read_images(paths, 32)
    assert (stored[1:] == stored[0]).all()
    np.testing.assert_array_equal(stored[0], decode(paths[0], 32))


def test_palette_with_a_transparent_index_is_composited(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putpixel((1, 1), 1)
    path = str(tmp_path / "palette.png")
    image.save(path, transparency=0)
    got = load_rgb(path)
    np.testing.assert_array_equal(got[0, 0], BACKGROUND)
    np.testing.assert_array_equal(got[1, 1], (200, 100, 50))
